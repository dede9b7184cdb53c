import { randomBytes } from 'node:crypto';
import { MessageChannel } from 'node:worker_threads';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionsError, StorageError } from '../../src/errors.js';
import { objectKey } from '../../src/format/keys.js';
import { S3Storage, toStorageError } from '../../src/storage/index.js';
import { makeBucket, s3Endpoint, s3ServerKind, testCredentials, testRegion } from '../support/env.js';

/** fauxqs (the fallback without moto) does not implement ListMultipartUploads. */
const listsUploads = () => s3ServerKind() !== 'fauxqs';

const MiB = 1024 * 1024;

describe('S3Storage against the S3 server', () => {
  let storage: S3Storage;
  beforeAll(async () => {
    storage = await makeBucket('storage');
  });
  afterAll(() => storage.close());

  it('puts, gets, ranges, heads, lists and deletes', async () => {
    const data = randomBytes(10_000);
    await storage.putObject('a/one', data);
    await storage.putObject('a/two', new Uint8Array(3));
    await storage.putObject('b/three', new Uint8Array(0));

    expect(Buffer.from(await storage.getObject('a/one')).equals(data)).toBe(true);
    expect(Buffer.from(await storage.getRange('a/one', 100, 1100)).equals(data.subarray(100, 1100))).toBe(true);
    expect(Buffer.from(await storage.getRange('a/one', 9_999, 10_000)).equals(data.subarray(9_999))).toBe(true);
    expect((await storage.getRange('a/one', 5, 5)).byteLength).toBe(0);
    expect((await storage.getObject('b/three')).byteLength).toBe(0);

    const head = await storage.headObject('a/one');
    expect(head).toMatchObject({ key: 'a/one', size: 10_000 });
    expect(head?.lastModified).toBeInstanceOf(Date);
    expect(await storage.headObject('a/missing')).toBeUndefined();

    expect((await storage.listObjects()).map((o) => o.key).sort()).toEqual(['a/one', 'a/two', 'b/three']);
    const listed = await storage.listObjects({ prefix: 'a/' });
    expect(listed.map((o) => [o.key, o.size])).toEqual([
      ['a/one', 10_000],
      ['a/two', 3],
    ]);

    await storage.deleteObjects(['a/one', 'a/missing-too', 'b/three']);
    expect((await storage.listObjects()).map((o) => o.key)).toEqual(['a/two']);
    await storage.deleteObjects([]);
  });

  it('getRange returns a non-pooled buffer covering exactly the range', async () => {
    await storage.putObject('pool', randomBytes(4096));
    const u8 = await storage.getRange('pool', 10, 110);
    expect(u8.byteLength).toBe(100);
    expect(u8.byteOffset).toBe(0);
    expect(u8.buffer.byteLength).toBe(100);
    const whole = await storage.getObject('pool');
    expect(whole.byteOffset).toBe(0);
    expect(whole.buffer.byteLength).toBe(4096);
    // Transferable with zero copies.
    const { port1, port2 } = new MessageChannel();
    const got = new Promise<Uint8Array>((resolve) => port2.once('message', resolve));
    port1.postMessage(u8, [u8.buffer]);
    expect((await got).byteLength).toBe(100);
    expect(u8.byteLength).toBe(0); // detached
    port1.close();
    port2.close();
  });

  it('a missing key, a range past the end and a missing bucket map to typed errors', async () => {
    const missing = await storage.getObject('nope').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(StorageError);
    expect(missing).toMatchObject({ code: 'ERR_STORAGE_NOT_FOUND', retryable: false, operation: 'GetObject', key: 'nope' });
    expect((missing as Error).message).toContain(`s3://${storage.bucket}/nope`);

    await storage.putObject('short', new Uint8Array(10));
    const short = await storage.getRange('short', 5, 20).catch((e: unknown) => e);
    expect(short).toMatchObject({ code: 'ERR_STORAGE_CONTENT', retryable: false });
    const past = await storage.getRange('short', 50, 60).catch((e: unknown) => e);
    expect(past).toMatchObject({ code: 'ERR_STORAGE_INVALID_REQUEST', retryable: false });

    const other = new S3Storage({
      bucket: 'no-such-bucket-for-storage-tests',
      namespace: 'DEFAULT',
      endpoint: s3Endpoint(),
      region: testRegion,
      credentials: testCredentials,
      forcePathStyle: true,
      maxAttempts: 1,
    });
    const noBucket = await other.putObject('k', new Uint8Array(1)).catch((e: unknown) => e);
    expect(noBucket).toMatchObject({ code: 'ERR_STORAGE_NOT_FOUND', retryable: false });
    expect((noBucket as Error).message).toMatch(/bucket .* does not exist/);
    other.close();
  });

  it('completes a multipart upload with 5 MiB parts', async () => {
    const data = randomBytes(11 * MiB);
    const key = storage.keyOf(42);
    expect(key).toBe(objectKey(42, 'DEFAULT'));
    const uploadId = await storage.createMultipartUpload(key);
    if (listsUploads()) expect((await storage.listMultipartUploads()).map((u) => u.uploadId)).toContain(uploadId);
    const parts = await Promise.all([
      storage.uploadPart(key, uploadId, 2, data.subarray(5 * MiB, 10 * MiB)),
      storage.uploadPart(key, uploadId, 1, data.subarray(0, 5 * MiB)),
      storage.uploadPart(key, uploadId, 3, data.subarray(10 * MiB)),
    ]);
    expect(parts.map((p) => p.partNumber)).toEqual([2, 1, 3]);
    expect(parts.every((p) => p.etag.length > 0)).toBe(true);
    await storage.completeMultipartUpload(key, uploadId, parts);
    expect((await storage.headObject(key))?.size).toBe(11 * MiB);
    const mid = await storage.getRange(key, 5 * MiB - 10, 5 * MiB + 10);
    expect(Buffer.from(mid).equals(data.subarray(5 * MiB - 10, 5 * MiB + 10))).toBe(true);
    expect(await storage.listMultipartUploads()).toEqual([]);
  });

  it('rejects a too small part at completion as an invalid request', async () => {
    const key = 'small-parts';
    const uploadId = await storage.createMultipartUpload(key);
    const p1 = await storage.uploadPart(key, uploadId, 1, new Uint8Array(1000));
    const p2 = await storage.uploadPart(key, uploadId, 2, new Uint8Array(1000));
    const err = await storage.completeMultipartUpload(key, uploadId, [p1, p2]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_STORAGE_INVALID_REQUEST', retryable: false, operation: 'CompleteMultipartUpload' });
    await storage.abortMultipartUpload(key, uploadId);
    // Idempotent.
    await storage.abortMultipartUpload(key, uploadId);
    expect(await storage.listMultipartUploads({ prefix: key })).toEqual([]);
  });

  it('lists page by page and deletes in batches of 1000', async () => {
    const keys = Array.from({ length: 7 }, (_, i) => `many/${i}`);
    await Promise.all(keys.map((k) => storage.putObject(k, new Uint8Array(1))));
    expect((await storage.listObjects({ prefix: 'many/', pageSize: 2 })).map((o) => o.key)).toEqual(keys);
    const uploads = await Promise.all(['mp/a', 'mp/b', 'mp/c'].map((k) => storage.createMultipartUpload(k)));
    if (listsUploads()) {
      const listed = await storage.listMultipartUploads({ prefix: 'mp/', pageSize: 2 });
      expect(listed.map((u) => u.uploadId).sort()).toEqual([...uploads].sort());
    }
    await Promise.all(['mp/a', 'mp/b', 'mp/c'].map((k, i) => storage.abortMultipartUpload(k, uploads[i]!)));
    // 2500 keys, most of them missing: three DeleteObjects requests, no error.
    const many = [...keys, ...Array.from({ length: 2493 }, (_, i) => `many/missing-${i}`)];
    await storage.deleteObjects(many);
    expect(await storage.listObjects({ prefix: 'many/' })).toEqual([]);
  });
});

describe('S3Storage options and worker config', () => {
  it('validates options, naming the option', () => {
    const base = { bucket: 'b', namespace: 'DEFAULT' };
    const bad: [Record<string, unknown>, string][] = [
      [{ ...base, bucket: '' }, 'bucket'],
      [{ ...base, namespace: 3 }, 'namespace'],
      [{ ...base, endpoint: 'not a url' }, 'endpoint'],
      [{ ...base, requestTimeoutMs: 0 }, 'requestTimeoutMs'],
      [{ ...base, maxAttempts: 1.5 }, 'maxAttempts'],
      [{ ...base, retryBaseDelayMs: -1 }, 'retryBaseDelayMs'],
      [{ ...base, credentials: { accessKeyId: 'x' } }, 'credentials'],
      [{ ...base, client: {} }, 'client'],
      [{ ...base, client: new S3Client({ region: 'us-east-1' }), endpoint: 'http://x' }, 'endpoint'],
    ];
    for (const [opts, option] of bad) {
      let err: unknown;
      try {
        new S3Storage(opts as never);
      } catch (e) {
        err = e;
      }
      expect(err, option).toBeInstanceOf(OptionsError);
      expect((err as OptionsError).option).toBe(option);
    }
  });

  it('workerConfig of own options is plain data', async () => {
    const s = new S3Storage({
      bucket: 'bkt',
      namespace: 'NS',
      endpoint: 'http://127.0.0.1:9',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 's' },
      forcePathStyle: true,
      requestTimeoutMs: 1234,
      maxAttempts: 5,
      retryBaseDelayMs: 7,
    });
    const cfg = await s.workerConfig();
    expect(cfg).toEqual({
      bucket: 'bkt',
      namespace: 'NS',
      endpoint: 'http://127.0.0.1:9',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 's' },
      forcePathStyle: true,
      requestTimeoutMs: 1234,
      maxAttempts: 5,
      retryBaseDelayMs: 7,
    });
    expect(structuredClone(cfg)).toEqual(cfg);
    s.close();
  });

  it('workerConfig from a given client resolves its endpoint, region, credentials and path style', async () => {
    const storage = await makeBucket('wcfg');
    await storage.putObject('x', new Uint8Array([1, 2, 3]));
    const client = new S3Client({
      endpoint: s3Endpoint(),
      region: testRegion,
      credentials: async () => ({ accessKeyId: 'test', secretAccessKey: 'test', sessionToken: 'tok' }),
      forcePathStyle: true,
    });
    const s = new S3Storage({ bucket: storage.bucket, namespace: 'DEFAULT', client });
    const cfg = await s.workerConfig();
    expect(cfg).toMatchObject({
      bucket: storage.bucket,
      namespace: 'DEFAULT',
      endpoint: s3Endpoint(),
      region: testRegion,
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test', sessionToken: 'tok' },
    });
    expect(structuredClone(cfg)).toEqual(cfg);
    // A worker builds its own client from it and reads the same bytes.
    const inWorker = S3Storage.fromConfig(structuredClone(cfg));
    expect([...(await inWorker.getObject('x'))]).toEqual([1, 2, 3]);
    inWorker.close();
    s.close(); // does not destroy the caller's client
    expect([...(await new S3Storage({ bucket: storage.bucket, namespace: 'DEFAULT', client }).getObject('x'))]).toEqual([1, 2, 3]);
    client.destroy();
    storage.close();
  });

  it('an unreachable endpoint says so', async () => {
    const s = new S3Storage({
      bucket: 'b',
      namespace: 'DEFAULT',
      endpoint: 'http://127.0.0.1:9',
      region: testRegion,
      credentials: testCredentials,
      forcePathStyle: true,
      maxAttempts: 2,
      retryBaseDelayMs: 1,
    });
    const err = await s.headObject('k').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_STORAGE_UNAVAILABLE', retryable: true });
    expect((err as Error).message).toContain('is the S3 endpoint http://127.0.0.1:9 reachable?');
    s.close();
  });

  it('toStorageError maps plain errors', () => {
    const reset = toStorageError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'GetObject', 'k');
    expect(reset).toMatchObject({ code: 'ERR_STORAGE_UNAVAILABLE', retryable: true });
    const hangup = toStorageError(new Error('socket hang up'), 'PutObject', 'k');
    expect(hangup).toMatchObject({ code: 'ERR_STORAGE_UNAVAILABLE', retryable: true });
    const abort = toStorageError(Object.assign(new Error('aborted'), { name: 'AbortError' }), 'PutObject', 'k');
    expect(abort.code).toBe('ERR_ABORTED');
    const s3err = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
    expect(toStorageError(s3err('SlowDown', 503), 'PutObject')).toMatchObject({ code: 'ERR_STORAGE_UNAVAILABLE', retryable: true });
    expect(toStorageError(s3err('RequestTimeout', 400), 'PutObject')).toMatchObject({ code: 'ERR_STORAGE_TIMEOUT', retryable: true });
    expect(toStorageError(s3err('AccessDenied', 403), 'PutObject')).toMatchObject({ code: 'ERR_STORAGE_ACCESS_DENIED', retryable: false });
    expect(toStorageError(s3err('NoSuchUpload', 404), 'UploadPart')).toMatchObject({ code: 'ERR_STORAGE_NOT_FOUND' });
    expect(toStorageError(s3err('PreconditionFailed', 412), 'PutObject')).toMatchObject({ code: 'ERR_STORAGE_PRECONDITION' });
    expect(toStorageError(s3err('EntityTooSmall', 400), 'CompleteMultipartUpload')).toMatchObject({
      code: 'ERR_STORAGE_INVALID_REQUEST',
      retryable: false,
    });
    expect(toStorageError(s3err('InternalError', 500), 'PutObject')).toMatchObject({ code: 'ERR_STORAGE_UNAVAILABLE', retryable: true, status: 500 });
  });
});
