import { toCompactorError } from '../errors.js';
import { forEachConcurrent } from '../util/async.js';
import type { CompletedPart, ObjectStorage } from './types.js';

/** S3's minimum size of every multipart part but the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

/**
 * Uploads a whole object held in memory: one PutObject up to `partSize`, a multipart upload with
 * `partSize` parts (`concurrency` in flight) above it. A failed or aborted multipart upload is
 * always aborted on the server, even when the caller's signal is what failed it.
 */
export async function uploadObject(
  storage: ObjectStorage,
  key: string,
  bytes: Uint8Array,
  opts: { partSize: number; concurrency?: number; signal?: AbortSignal | undefined },
): Promise<void> {
  const { partSize, signal } = opts;
  if (bytes.byteLength <= partSize) {
    await storage.putObject(key, bytes, { signal, ifNoneMatch: true });
    return;
  }
  const uploadId = await storage.createMultipartUpload(key, { signal });
  try {
    const partCount = Math.ceil(bytes.byteLength / partSize);
    const parts: CompletedPart[] = new Array(partCount);
    const indexes = Array.from({ length: partCount }, (_, i) => i);
    await forEachConcurrent(
      indexes,
      opts.concurrency ?? 4,
      async (i, _n, lane) => {
        const body = bytes.subarray(i * partSize, Math.min(bytes.byteLength, (i + 1) * partSize));
        parts[i] = await storage.uploadPart(key, uploadId, i + 1, body, { signal: lane });
      },
      signal,
    );
    await storage.completeMultipartUpload(key, uploadId, parts, { signal, ifNoneMatch: true });
  } catch (err) {
    // No caller signal here: the abort must reach the server even when the caller gave up.
    await storage.abortMultipartUpload(key, uploadId).catch(() => {});
    throw toCompactorError(err);
  }
}
