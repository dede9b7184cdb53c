import { describe, expect, it } from 'vitest';
import { describeFailure, EXIT_FAILURE, EXIT_USAGE, UsageError } from '../../src/cli/errors.js';
import { parseTunables } from '../../src/cli/options.js';
import { formatDuration, formatSize, parseDuration, parseInteger, parseSize } from '../../src/cli/parse.js';
import { OptionsError, StorageError } from '../../src/errors.js';

describe('option value parsers', () => {
  it('sizes', () => {
    expect(parseSize('--x', '16MiB')).toBe(16 * 1024 * 1024);
    expect(parseSize('--x', '16 mib')).toBe(16 * 1024 * 1024);
    expect(parseSize('--x', '1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('--x', '512K')).toBe(512 * 1024);
    expect(parseSize('--x', '500kb')).toBe(500_000);
    expect(parseSize('--x', '4096')).toBe(4096);
    expect(() => parseSize('--part-size', '16 furlongs')).toThrow('option "--part-size": expected a size such as 16MiB');
    expect(() => parseSize('--x', '-1MiB')).toThrow(UsageError);
    expect(() => parseSize('--x', '1.5')).toThrow(/whole number of bytes/);
    expect(formatSize(16 * 1024 * 1024)).toBe('16MiB');
    expect(formatSize(200 * 1024 * 1024)).toBe('200MiB');
    expect(formatSize(1000)).toBe('1000');
  });

  it('durations and integers', () => {
    expect(parseDuration('--x', '5m')).toBe(300_000);
    expect(parseDuration('--x', '2h')).toBe(7_200_000);
    expect(parseDuration('--x', '250ms')).toBe(250);
    expect(parseDuration('--x', '1500')).toBe(1500);
    expect(() => parseDuration('--interval', 'soon')).toThrow('option "--interval"');
    expect(formatDuration(120 * 60_000)).toBe('2h');
    expect(formatDuration(200)).toBe('200ms');
    expect(parseInteger('--node-id', '7')).toBe(7);
    expect(() => parseInteger('--node-id', 'abc')).toThrow('option "--node-id": expected an integer, got "abc"');
    expect(() => parseInteger('--node-id', '-1')).toThrow('must be at least 0');
  });

  it('tunables are checked before any I/O, errors named by flag', () => {
    expect(parseTunables({ partSize: '8MiB', memoryLimit: '64MiB' })).toEqual({ partSize: 8 * 1024 * 1024, memoryLimit: 64 * 1024 * 1024 });
    expect(() => parseTunables({ partSize: '1KiB' })).toThrow('option "--part-size": must be at least 5MiB');
    expect(parseTunables({ partSize: '1KiB', minPartSize: '1KiB' })).toEqual({ partSize: 1024, minPartSize: 1024 });
    // Counts where 0 turns the feature off (--max-open-reads 0 was refused as "at least 1").
    expect(parseTunables({ maxOpenReads: '0', niceIncrement: '0' })).toEqual({ maxOpenReads: 0, niceIncrement: 0 });
    expect(parseTunables({ niceIncrement: '19' })).toEqual({ niceIncrement: 19 });
    expect(() => parseTunables({ niceIncrement: '-1' })).toThrow('option "--nice-increment": must be at least 0');
    let tooNice: unknown;
    try {
      parseTunables({ niceIncrement: '20' });
    } catch (e) {
      tooNice = e;
    }
    expect(describeFailure(tooNice).message).toMatch(/option "--nice-increment": must be an integer from 0 .* to 19/);
    let err: unknown;
    try {
      parseTunables({ bandwidthLimit: '1KiB' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OptionsError);
    expect(describeFailure(err)).toEqual({ message: expect.stringContaining('option "--bandwidth-limit": must be an integer number of bytes per second of at least'), exitCode: EXIT_USAGE });
  });

  it('describeFailure: one line, exit codes', () => {
    const refused = new StorageError('ERR_STORAGE_UNAVAILABLE', 'GetObject failed: connection error (ECONNREFUSED)', { operation: 'GetObject' }, {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      retryable: true,
    });
    expect(describeFailure(refused, { endpoint: 'http://127.0.0.1:1' })).toEqual({
      message: 'cannot reach S3 endpoint http://127.0.0.1:1: connection refused (ECONNREFUSED) (is it running? check --endpoint)',
      exitCode: EXIT_FAILURE,
    });
    expect(describeFailure(new Error('a\n  b')).message).toBe('a; b');
  });
});
