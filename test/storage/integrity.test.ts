/**
 * Object bodies go up with an unsigned payload (no SHA-256 over every byte for the signature)
 * and the body's CRC32, which S3 checks (issue #9). moto checks neither a payload hash nor a
 * checksum (a body with a byte flipped in transit is stored as it arrived), so what this test
 * can hold is what the client sends, seen by the fault proxy.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { s3ServerKind, testCredentials } from '../support/env.js';
import { useProxiedStorage } from '../support/fault-proxy.js';
import { sigV4Mismatch } from '../support/sigv4.js';

const MiB = 1024 * 1024;

describe.skipIf(s3ServerKind() === 'fauxqs')('object bodies: unsigned payload, CRC32 checked by the server', () => {
  const env = useProxiedStorage('integrity', { maxAttempts: 1 });

  it('PutObject and UploadPart carry UNSIGNED-PAYLOAD and the body CRC32; other requests stay signed as usual', async () => {
    const storage = env.storage();
    await storage.putObject('put', randomBytes(1000), { ifNoneMatch: true });
    const id = await storage.createMultipartUpload('mp');
    const part = await storage.uploadPart('mp', id, 1, randomBytes(5 * MiB));
    await storage.completeMultipartUpload('mp', id, [part]);
    await storage.getRange('put', 0, 10);
    const byOp = new Map(env.proxy().requests.map((r) => [r.op, r.headers]));
    for (const op of ['PutObject', 'UploadPart'] as const) {
      expect(byOp.get(op)?.['x-amz-content-sha256'], op).toBe('UNSIGNED-PAYLOAD');
      expect(byOp.get(op)?.['x-amz-checksum-crc32'], op).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    }
    expect(byOp.get('GetObject')?.['x-amz-content-sha256']).not.toBe('UNSIGNED-PAYLOAD');
  });

  // Regression: the unsigned-payload header was set after the signer had run, so the signature
  // covered the body's SHA-256 while the header said UNSIGNED-PAYLOAD. moto accepted it (it checks
  // no signature); real S3 answers SignatureDoesNotMatch to every PutObject and UploadPart.
  it('every request, unsigned bodies included, carries a signature that matches what it sends', async () => {
    const storage = env.storage();
    await storage.putObject('signed-put', randomBytes(1000), { ifNoneMatch: true });
    const id = await storage.createMultipartUpload('signed-mp');
    const part = await storage.uploadPart('signed-mp', id, 1, randomBytes(5 * MiB));
    await storage.completeMultipartUpload('signed-mp', id, [part]);
    await storage.getRange('signed-put', 0, 10);
    const seen = env.proxy().requests.filter((r) => r.key?.startsWith('signed-'));
    expect(new Set(seen.map((r) => r.op))).toEqual(new Set(['PutObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'GetObject']));
    for (const r of seen) expect(sigV4Mismatch(r, testCredentials.secretAccessKey), `${r.op} ${r.path}`).toBeUndefined();
  });
});
