import { createHash } from 'node:crypto';
import { StorageError } from '../errors.js';
import { HeadObjectCommand, type S3Client } from './s3-client.js';
import type { CompletedPart } from './types.js';

/**
 * Conditional writes (If-None-Match: *): how a refusal is told apart from our own retried write.
 * S3 refuses a retry whose first attempt landed but whose response was lost; the object there
 * then has the ETag our bytes make, and the write has succeeded.
 */

export function isPrecondition(err: unknown): boolean {
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
export function singlePartEtag(body: Uint8Array): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}

/** S3's ETag of a completed multipart upload: the MD5 of the parts' binary MD5s, and their count. */
export function multipartEtag(parts: CompletedPart[]): string | undefined {
  const digests: Buffer[] = [];
  for (const p of parts) {
    const hex = p.etag.replace(/"/g, '');
    if (!/^[0-9a-f]{32}$/i.test(hex)) return undefined;
    digests.push(Buffer.from(hex, 'hex'));
  }
  return `"${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}"`;
}

export function refusedOverwrite(err: unknown, bucket: string, operation: string, key: string): StorageError {
  return new StorageError(
    'ERR_STORAGE_PRECONDITION',
    `${operation} refused to overwrite s3://${bucket}/${key}: another object already exists there (If-None-Match: *); its id was handed out twice, or another writer used it`,
    { operation, key, status: 412 },
    { cause: err },
  );
}
