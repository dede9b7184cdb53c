import { StorageError, type StorageErrorCode } from '../errors.js';
import type { RangeIo } from './fetch-range.js';
import { DELETE_BATCH_SIZE, DeleteObjectsCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from './s3-client.js';
import type { MultipartUploadInfo, ObjectInfo, RequestOptions } from './types.js';

/** The bucket's listings and batch deletes, for GC and recovery: pages and batches, one request each. */

export type ListIo = Pick<RangeIo, 'bucket' | 'send' | 'err'>;
export type ListOptions = RequestOptions & { prefix?: string; pageSize?: number };

/** Every unfinished multipart upload under `prefix`, page after page. */
export async function listMultipartUploads(io: ListIo, opts: ListOptions): Promise<MultipartUploadInfo[]> {
  const out: MultipartUploadInfo[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await io.send(
      'ListMultipartUploads',
      opts.prefix,
      new ListMultipartUploadsCommand({
        Bucket: io.bucket,
        ...(opts.prefix !== undefined ? { Prefix: opts.prefix } : {}),
        ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
        ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
        ...(opts.pageSize !== undefined ? { MaxUploads: opts.pageSize } : {}),
      }),
      opts.signal,
      (p: {
        Uploads?: { Key?: string; UploadId?: string; Initiated?: Date }[];
        IsTruncated?: boolean;
        NextKeyMarker?: string;
        NextUploadIdMarker?: string;
      }) => p,
    );
    for (const u of page.Uploads ?? []) {
      if (u.Key !== undefined && u.UploadId !== undefined) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
    }
    if (!page.IsTruncated || (page.NextKeyMarker === undefined && page.NextUploadIdMarker === undefined)) return out;
    if (page.NextKeyMarker === keyMarker && page.NextUploadIdMarker === uploadIdMarker) return out; // no progress: stop
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

/** Every object under `prefix`, page after page. */
export async function listObjects(io: ListIo, opts: ListOptions): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  let token: string | undefined;
  for (;;) {
    const page = await io.send(
      'ListObjectsV2',
      opts.prefix,
      new ListObjectsV2Command({
        Bucket: io.bucket,
        ...(opts.prefix !== undefined ? { Prefix: opts.prefix } : {}),
        ...(token !== undefined ? { ContinuationToken: token } : {}),
        ...(opts.pageSize !== undefined ? { MaxKeys: opts.pageSize } : {}),
      }),
      opts.signal,
      (p: { Contents?: { Key?: string; Size?: number; LastModified?: Date }[]; IsTruncated?: boolean; NextContinuationToken?: string }) => p,
    );
    for (const o of page.Contents ?? []) {
      if (o.Key !== undefined) out.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified });
    }
    if (!page.IsTruncated || !page.NextContinuationToken || page.NextContinuationToken === token) return out;
    token = page.NextContinuationToken;
  }
}

/** Deletes in batches of DELETE_BATCH_SIZE; a key that is gone already counts as deleted. */
export async function deleteObjects(io: ListIo, keys: readonly string[], opts: RequestOptions): Promise<void> {
  const unique = [...new Set(keys)];
  for (let i = 0; i < unique.length; i += DELETE_BATCH_SIZE) {
    const batch = unique.slice(i, i + DELETE_BATCH_SIZE);
    const errors = await io.send(
      'DeleteObjects',
      batch[0],
      new DeleteObjectsCommand({
        Bucket: io.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      }),
      opts.signal,
      (out: { Errors?: { Key?: string; Code?: string; Message?: string }[] }) => out.Errors ?? [],
    );
    // A missing key is deleted already.
    const real = errors.filter((e) => e.Code !== 'NoSuchKey');
    if (real.length > 0) {
      const first = real[0]!;
      const mapped = io.err(
        Object.assign(new Error(first.Message ?? first.Code ?? 'error'), {
          name: first.Code ?? 'Error',
          code: first.Code,
          $metadata: { httpStatusCode: statusOfS3Code(first.Code) },
        }),
        'DeleteObjects',
        first.Key,
      );
      const listed = real
        .slice(0, 5)
        .map((e) => `${e.Key ?? '?'} (${e.Code ?? '?'})`)
        .join(', ');
      throw new StorageError(
        mapped instanceof StorageError ? (mapped.code as StorageErrorCode) : 'ERR_STORAGE_UNKNOWN',
        `DeleteObjects bucket ${io.bucket}: ${real.length} of ${batch.length} keys failed: ${listed}${real.length > 5 ? ', …' : ''}`,
        { operation: 'DeleteObjects', ...(first.Key !== undefined ? { key: first.Key } : {}) },
        { retryable: mapped.retryable, cause: mapped },
      );
    }
  }
}

function statusOfS3Code(code: string | undefined): number {
  switch (code) {
    case 'AccessDenied':
      return 403;
    case 'NoSuchBucket':
    case 'NoSuchKey':
      return 404;
    case 'SlowDown':
      return 503;
    case 'InternalError':
    case 'ServiceUnavailable':
      return 500;
    default:
      return 400;
  }
}
