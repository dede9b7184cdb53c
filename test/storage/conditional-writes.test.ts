/**
 * Output objects are written with If-None-Match: * (issue #12): a new object never overwrites an
 * existing one (typed ERR_STORAGE_PRECONDITION naming the key, the old object intact), while a
 * retry of a write whose response was lost finds its own object and succeeds. Against the run's
 * S3 server, through the fault proxy for the lost responses.
 */
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import type { S3Storage } from '../../src/storage/index.js';
import { s3ServerKind } from '../support/env.js';
import { fault, useProxiedStorage, type FaultProxy } from '../support/fault-proxy.js';

const MiB = 1024 * 1024;

describe.skipIf(s3ServerKind() === 'fauxqs')('conditional writes (If-None-Match: *)', () => {
  const env = useProxiedStorage('ifnm', { requestTimeoutMs: 700 });
  let proxy: FaultProxy;
  let storage: S3Storage;
  beforeEach(() => {
    proxy = env.proxy();
    storage = env.storage();
  });

  it('PutObject: a second object at the key is refused and the first stays; the same bytes again are ours', async () => {
    const first = randomBytes(1000);
    await storage.putObject('a', first, { ifNoneMatch: true });
    const err = await storage.putObject('a', randomBytes(1000), { ifNoneMatch: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: 'ERR_STORAGE_PRECONDITION', retryable: false, key: 'a', message: expect.stringContaining('refused to overwrite') });
    expect(Buffer.from(await storage.getObject('a')).equals(first)).toBe(true);
    await storage.putObject('a', first, { ifNoneMatch: true });
    // Without the option, a put overwrites (the store's plain semantics).
    await storage.putObject('a', new Uint8Array([1]));
    expect((await storage.headObject('a'))?.size).toBe(1);
  });

  it('PutObject whose response is lost: the retry meets its own object and succeeds', async () => {
    const body = randomBytes(2000);
    const lost = proxy.addRule({ op: 'PutObject', key: 'lost', times: 1, action: fault.delay(2_000) });
    await storage.putObject('lost', body, { ifNoneMatch: true });
    expect(lost.hits).toBe(1);
    // The retry was refused by the server (the first attempt's object was there): the 412 path.
    expect(proxy.requests.filter((r) => r.op === 'PutObject' && r.key === 'lost').map((r) => r.status)).toContain(412);
    expect(Buffer.from(await storage.getObject('lost')).equals(body)).toBe(true);
  });

  it('CompleteMultipartUpload: refused onto an existing object, and a lost response is recovered', async () => {
    const upload = async (key: string) => {
      const id = await storage.createMultipartUpload(key);
      const parts = [await storage.uploadPart(key, id, 1, randomBytes(5 * MiB)), await storage.uploadPart(key, id, 2, randomBytes(100))];
      return { id, parts };
    };
    await storage.putObject('m', new Uint8Array([7]));
    const m = await upload('m');
    await expect(storage.completeMultipartUpload('m', m.id, m.parts, { ifNoneMatch: true })).rejects.toMatchObject({ code: 'ERR_STORAGE_PRECONDITION', key: 'm' });
    expect((await storage.headObject('m'))?.size).toBe(1);
    await storage.abortMultipartUpload('m', m.id);

    const n = await upload('n');
    const lost = proxy.addRule({ op: 'CompleteMultipartUpload', key: 'n', times: 1, action: fault.delay(2_000) });
    await storage.completeMultipartUpload('n', n.id, n.parts, { ifNoneMatch: true });
    expect(lost.hits).toBe(1);
    expect(proxy.requests.filter((r) => r.op === 'CompleteMultipartUpload' && r.key === 'n').length).toBeGreaterThan(1);
    expect((await storage.headObject('n'))?.size).toBe(5 * MiB + 100);
  }, 30_000);
});
