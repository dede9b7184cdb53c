/**
 * Test helpers over the run's S3 server (started once by test/support/global-setup.ts).
 *
 *   const storage = await makeBucket('gc');                          // direct to the server
 *   const proxy = await startFaultProxy(s3Endpoint());
 *   const flaky = await makeBucket('gc', { endpoint: proxy.url });   // through the fault proxy
 *   const again = makeStorage(flaky.bucket, { endpoint: proxy.url, maxAttempts: 1 });
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { S3Storage, type S3StorageOptions } from '../../src/storage/s3-storage.js';
import type { S3StorageConfig } from '../../src/storage/types.js';

export const testCredentials = { accessKeyId: 'test', secretAccessKey: 'test' } as const;
export const testRegion = 'us-east-1';

/** Base URL of the run's S3 server (`S3_ENDPOINT` wins). */
export function s3Endpoint(): string {
  return process.env.S3_ENDPOINT?.replace(/\/+$/, '') ?? inject('s3Endpoint');
}

/** 'moto' | 'fauxqs' | 'external'. */
export function s3ServerKind(): string {
  return process.env.S3_ENDPOINT ? 'external' : inject('s3ServerKind');
}

export interface TestStorageOptions {
  /** Where the storage sends requests: the S3 server (default) or a fault proxy's url. */
  endpoint?: string;
  namespace?: string;
  /** Default 2000 ms. */
  requestTimeoutMs?: number;
  /** Default 3. */
  maxAttempts?: number;
  /** Default 5 ms. */
  retryBaseDelayMs?: number;
}

/** Fast-failing, fast-retrying test settings. */
export function testStorageOptions(bucket: string, opts: TestStorageOptions = {}): S3StorageOptions {
  return {
    bucket,
    namespace: opts.namespace ?? 'DEFAULT',
    endpoint: opts.endpoint ?? s3Endpoint(),
    region: testRegion,
    credentials: { ...testCredentials },
    forcePathStyle: true,
    requestTimeoutMs: opts.requestTimeoutMs ?? 2000,
    maxAttempts: opts.maxAttempts ?? 3,
    retryBaseDelayMs: opts.retryBaseDelayMs ?? 5,
  };
}

/** The same settings as plain worker configuration. */
export function testStorageConfig(bucket: string, opts: TestStorageOptions = {}): S3StorageConfig {
  const o = testStorageOptions(bucket, opts);
  return { ...o, region: testRegion } as S3StorageConfig;
}

/** An S3Storage on an existing bucket (see `makeBucket` for a fresh one). */
export function makeStorage(bucket: string, opts: TestStorageOptions = {}): S3Storage {
  return new S3Storage(testStorageOptions(bucket, opts));
}

/** A plain S3 client to the S3 server itself (no proxy), for setup and inspection. */
export function directClient(): S3Client {
  return new S3Client({
    endpoint: s3Endpoint(),
    region: testRegion,
    credentials: { ...testCredentials },
    forcePathStyle: true,
  });
}

let counter = 0;

/** A unique, valid bucket name starting with `prefix`. */
export function uniqueBucketName(prefix = 'test'): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 30) || 'test';
  const rnd = Math.random().toString(36).slice(2, 8);
  return `${clean}-${process.pid}-${Date.now().toString(36)}-${counter++}-${rnd}`.slice(0, 63).replace(/-+$/, '');
}

/** Creates a bucket on the S3 server (directly, never through a proxy) and returns its name. */
export async function createTestBucket(prefix = 'test'): Promise<string> {
  const bucket = uniqueBucketName(prefix);
  const client = directClient();
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return bucket;
}

/**
 * Creates a fresh uniquely named bucket and returns an S3Storage for it with fast retries
 * (retryBaseDelayMs 5, requestTimeoutMs 2000, maxAttempts 3 unless given). `opts.endpoint`
 * points the storage at a fault proxy; the bucket itself is always created directly.
 */
export async function makeBucket(prefix = 'test', opts: TestStorageOptions = {}): Promise<S3Storage> {
  const bucket = await createTestBucket(prefix);
  return makeStorage(bucket, opts);
}
