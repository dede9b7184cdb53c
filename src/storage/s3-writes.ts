import { createHash } from 'node:crypto';
import { StorageError } from '../errors.js';
import type { RangeIo } from './fetch-range.js';
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand, UploadPartCommand, type S3Client } from './s3-client.js';
import type { CompletedPart, CreatedUpload, RequestOptions, WriteOptions } from './types.js';

/**
 * S3Storage's writes: single PUTs and multipart uploads, each request retried by the SDK only.
 * A conditional write (If-None-Match: *) that S3 refuses may be our own retry whose first
 * attempt landed but whose response was lost: the object there then has the ETag our bytes make,
 * and the write has succeeded (`settleRefusal`).
 */

export type WriteIo = Pick<RangeIo, 'bucket' | 'send' | 'storageError' | 'takeBandwidth'> & {
  /** The object's ETag now, or undefined when it is missing or cannot be read. */
  etagNow(key: string, signal: AbortSignal | undefined): Promise<string | undefined>;
};

export async function putObject(io: WriteIo, key: string, body: Uint8Array, opts: WriteOptions): Promise<void> {
  await io.takeBandwidth(body.byteLength, opts.signal, 'PutObject', key);
  try {
    await io.send(
      'PutObject',
      key,
      new PutObjectCommand({ Bucket: io.bucket, Key: key, Body: body, ContentLength: body.byteLength, ...(opts.ifNoneMatch ? { IfNoneMatch: '*' } : {}) }),
      opts.signal,
      () => undefined,
    );
  } catch (err) {
    await settleRefusal(io, err, opts, 'PutObject', key, () => singlePartEtag(body));
  }
}

export async function createMultipartUpload(io: WriteIo, key: string, opts: RequestOptions): Promise<CreatedUpload> {
  return io.send(
    'CreateMultipartUpload',
    key,
    new CreateMultipartUploadCommand({ Bucket: io.bucket, Key: key }),
    opts.signal,
    (out: { UploadId?: string; $metadata?: { attempts?: number } }) => {
      if (!out.UploadId) throw io.storageError('ERR_STORAGE_UNKNOWN', 'CreateMultipartUpload', key, 'the response has no UploadId');
      // The SDK's retry middleware counts them; a client without it says nothing: assume retried.
      return { uploadId: out.UploadId, attempts: out.$metadata?.attempts ?? Number.POSITIVE_INFINITY };
    },
  );
}

export async function uploadPart(io: WriteIo, key: string, uploadId: string, partNumber: number, body: Uint8Array, opts: RequestOptions): Promise<CompletedPart> {
  if (!Number.isSafeInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
    throw new StorageError('ERR_STORAGE_INVALID_REQUEST', `UploadPart s3://${io.bucket}/${key}: part number ${partNumber} is not in 1..10000`, {
      operation: 'UploadPart',
      key,
    });
  }
  await io.takeBandwidth(body.byteLength, opts.signal, 'UploadPart', key);
  return io.send(
    'UploadPart',
    key,
    new UploadPartCommand({
      Bucket: io.bucket,
      Key: key,
      UploadId: uploadId,
      PartNumber: partNumber,
      Body: body,
      ContentLength: body.byteLength,
    }),
    opts.signal,
    (out: { ETag?: string }) => {
      if (!out.ETag) throw io.storageError('ERR_STORAGE_UNKNOWN', 'UploadPart', key, `part ${partNumber}: the response has no ETag`);
      return { partNumber, etag: out.ETag };
    },
  );
}

export async function completeMultipartUpload(io: WriteIo, key: string, uploadId: string, parts: CompletedPart[], opts: WriteOptions): Promise<void> {
  if (parts.length === 0) {
    throw new StorageError('ERR_STORAGE_INVALID_REQUEST', `CompleteMultipartUpload s3://${io.bucket}/${key}: no parts`, {
      operation: 'CompleteMultipartUpload',
      key,
    });
  }
  const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
  try {
    await io.send(
      'CompleteMultipartUpload',
      key,
      new CompleteMultipartUploadCommand({
        Bucket: io.bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: sorted.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        ...(opts.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
      }),
      opts.signal,
      () => undefined,
    );
  } catch (err) {
    await settleRefusal(io, err, opts, 'CompleteMultipartUpload', key, () => multipartEtag(sorted));
  }
}

/**
 * A write with If-None-Match that failed: returns when the refusal was of our own object (a
 * retry whose first attempt's response was lost finds what it wrote), else throws, typed.
 */
async function settleRefusal(io: WriteIo, err: unknown, opts: WriteOptions, operation: string, key: string, ownEtag: () => string | undefined): Promise<void> {
  if (!isPrecondition(err)) throw err;
  const etag = opts.ifNoneMatch ? ownEtag() : undefined;
  if (etag !== undefined && (await io.etagNow(key, opts.signal)) === etag) return;
  throw refusedOverwrite(err, io.bucket, operation, key);
}

export async function abortMultipartUpload(io: WriteIo, key: string, uploadId: string, opts: RequestOptions): Promise<void> {
  try {
    await io.send(
      'AbortMultipartUpload',
      key,
      new AbortMultipartUploadCommand({ Bucket: io.bucket, Key: key, UploadId: uploadId }),
      opts.signal,
      () => undefined,
    );
  } catch (err) {
    // Idempotent: an upload that is gone (aborted or completed) is what we wanted.
    if (err instanceof StorageError && err.code === 'ERR_STORAGE_NOT_FOUND' && isNoSuchUpload(err)) return;
    throw err;
  }
}

function isNoSuchUpload(err: StorageError): boolean {
  const c = err.cause as { name?: unknown; Code?: unknown } | undefined;
  // AbortMultipartUpload's only 404 is NoSuchUpload (a missing bucket is NoSuchBucket).
  return c?.name !== 'NoSuchBucket' && c?.Code !== 'NoSuchBucket';
}

// -- conditional writes --------------------------------------------------------------------

function isPrecondition(err: unknown): boolean {
  return err instanceof StorageError && err.code === 'ERR_STORAGE_PRECONDITION';
}

/** The object's ETag now, or undefined when it is missing or cannot be read. */
export async function etagOf(client: S3Client, bucket: string, key: string, signal: AbortSignal | undefined): Promise<string | undefined> {
  try {
    const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), signal ? { abortSignal: signal } : {});
    return out.ETag;
  } catch {
    return undefined;
  }
}

/** S3's ETag of an object written by one PutObject: the MD5 of its bytes. */
function singlePartEtag(body: Uint8Array): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}

/** S3's ETag of a completed multipart upload: the MD5 of the parts' binary MD5s, and their count. */
function multipartEtag(parts: CompletedPart[]): string | undefined {
  const digests: Buffer[] = [];
  for (const p of parts) {
    const hex = p.etag.replace(/"/g, '');
    if (!/^[0-9a-f]{32}$/i.test(hex)) return undefined;
    digests.push(Buffer.from(hex, 'hex'));
  }
  return `"${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}"`;
}

function refusedOverwrite(err: unknown, bucket: string, operation: string, key: string): StorageError {
  return new StorageError(
    'ERR_STORAGE_PRECONDITION',
    `${operation} refused to overwrite s3://${bucket}/${key}: another object already exists there (If-None-Match: *); its id was handed out twice, or another writer used it`,
    { operation, key, status: 412 },
    { cause: err },
  );
}
