import { describe, expect, it } from 'vitest';
import * as errors from '../src/errors.js';
import { AbortError, CompactorError, deserializeError, serializeError, StorageError } from '../src/errors.js';

describe('errors', () => {
  it('survive serialization with class, code, retryable, fields and cause', () => {
    const e = new StorageError('ERR_STORAGE_UNAVAILABLE', 'boom', { operation: 'UploadPart', key: 'k', status: 503 }, { retryable: true, cause: new Error('socket') });
    const back = deserializeError(structuredClone(serializeError(e)));
    expect(back).toBeInstanceOf(StorageError);
    expect(back).toBeInstanceOf(CompactorError);
    expect(back).not.toBeInstanceOf(AbortError);
    expect(back).toMatchObject({ code: 'ERR_STORAGE_UNAVAILABLE', retryable: true, operation: 'UploadPart', key: 'k', status: 503, message: 'boom' });
    expect((back.cause as Error).message).toBe('socket');
  });

  // Regression: a worker loaded through another loader had a second copy of this module, so a
  // fatal StorageError failed `instanceof CompactorError` there and became a retryable crash.
  it('instanceof holds for errors made by another copy of the module', async () => {
    // The built copy (npm test builds first) is a second module instance with its own classes.
    const copy = (await import(new URL('../dist/errors.js', import.meta.url).href)) as typeof errors;
    expect(copy.StorageError).not.toBe(StorageError);
    const foreign = new copy.StorageError('ERR_STORAGE_ACCESS_DENIED', 'no', { operation: 'PutObject' });
    expect(foreign).toBeInstanceOf(StorageError);
    expect(foreign).toBeInstanceOf(CompactorError);
    expect(foreign).not.toBeInstanceOf(AbortError);
    expect(errors.toCompactorError(foreign)).toBe(foreign);
    expect({ code: 'x' }).not.toBeInstanceOf(CompactorError);
  });
});
