/**
 * The S3 client the storage drives: the SDK loaded the cheap way, the options checked where they
 * enter, and timeouts that really fail a request.
 */
import { createRequire } from 'node:module';
import { OptionsError } from '../errors.js';
import { backoffDelay } from '../util/async.js';
import type { S3StorageConfig } from './types.js';

// The SDK through require, not import: imported from ESM, a CommonJS module is first scanned by
// Node's export lexer for its named exports, and over the SDK's bundles that is ~40-60 ms of every
// thread's start (measured: import 86-119 ms, require 53-59 ms). The modules are the same either
// way (one CommonJS cache), so a host's own S3Client is still an S3Client here.
const require = createRequire(import.meta.url);
export const {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
export type S3Client = InstanceType<typeof S3Client>;
const { ConfiguredRetryStrategy } = require('@smithy/core/retry') as typeof import('@smithy/core/retry');
const { NodeHttpHandler } = require('@smithy/node-http-handler') as typeof import('@smithy/node-http-handler');

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_RETRY_BASE_DELAY_MS = 100;
export const DEFAULT_REGION = 'us-east-1';
/** Cap of one backoff delay (the SDK's own cap). */
export const MAX_RETRY_DELAY_MS = 20_000;
/** Keys per DeleteObjects request (the S3 limit). */
export const DELETE_BATCH_SIZE = 1000;

export interface S3StorageOptions {
  bucket: string;
  /** Namespace of object keys (`objectKey(objectId, namespace)`), e.g. 'DEFAULT'. */
  namespace: string;
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  forcePathStyle?: boolean;
  /** Per-request deadline (until the response headers) and idle deadline of a body. Default 30 000 ms. */
  requestTimeoutMs?: number;
  /** Attempts per request, the first included. Default 3. */
  maxAttempts?: number;
  /** Base delay of the exponential backoff between attempts. Default 100 ms. */
  retryBaseDelayMs?: number;
  /**
   * Smallest multipart part (all but the last) the store accepts. Default 5 MiB, what S3 and
   * most compatible stores enforce; lower it only for a store that really accepts less.
   */
  minPartSize?: number;
  /**
   * A ready S3 client. It stays the caller's (`close()` does not destroy it); its retry and
   * timeout settings apply to its requests. Not combinable with endpoint/region/credentials/
   * forcePathStyle.
   */
  client?: S3Client;
}

export interface ResolvedSettings {
  requestTimeoutMs: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
}

// ---------------------------------------------------------------------------------------------
// Options

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

export function validateOptions(o: S3StorageOptions): void {
  if (typeof o !== 'object' || o === null) throw new OptionsError('options', 'expected an object { bucket, namespace, ... }');
  if (typeof o.bucket !== 'string' || o.bucket.length === 0) {
    throw new OptionsError('bucket', `expected a non-empty bucket name, got ${JSON.stringify(o.bucket)}`);
  }
  if (typeof o.namespace !== 'string' || o.namespace.length === 0) {
    throw new OptionsError('namespace', `expected a non-empty string such as 'DEFAULT', got ${JSON.stringify(o.namespace)}`);
  }
  if (o.endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = typeof o.endpoint === 'string' ? new URL(o.endpoint) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new OptionsError('endpoint', `expected an http(s) URL such as http://127.0.0.1:9000, got ${JSON.stringify(o.endpoint)}`);
    }
  }
  if (o.region !== undefined && (typeof o.region !== 'string' || o.region.length === 0)) {
    throw new OptionsError('region', `expected a non-empty region name such as 'us-east-1', got ${JSON.stringify(o.region)}`);
  }
  if (o.credentials !== undefined) {
    const c = o.credentials as unknown as Record<string, unknown>;
    if (typeof c !== 'object' || c === null || typeof c.accessKeyId !== 'string' || typeof c.secretAccessKey !== 'string') {
      throw new OptionsError('credentials', 'expected { accessKeyId: string, secretAccessKey: string, sessionToken?: string }');
    }
    if (c.sessionToken !== undefined && typeof c.sessionToken !== 'string') {
      throw new OptionsError('credentials', 'sessionToken must be a string when given');
    }
  }
  if (o.forcePathStyle !== undefined && typeof o.forcePathStyle !== 'boolean') {
    throw new OptionsError('forcePathStyle', `expected a boolean, got ${JSON.stringify(o.forcePathStyle)}`);
  }
  if (o.requestTimeoutMs !== undefined && !isPositiveInt(o.requestTimeoutMs)) {
    throw new OptionsError('requestTimeoutMs', `expected a positive integer of milliseconds, got ${String(o.requestTimeoutMs)}`);
  }
  if (o.minPartSize !== undefined && !isPositiveInt(o.minPartSize)) {
    throw new OptionsError('minPartSize', `expected a positive integer of bytes, got ${String(o.minPartSize)}`);
  }
  if (o.maxAttempts !== undefined && !isPositiveInt(o.maxAttempts)) {
    throw new OptionsError('maxAttempts', `expected an integer >= 1 (1 = no retry), got ${String(o.maxAttempts)}`);
  }
  if (
    o.retryBaseDelayMs !== undefined &&
    (typeof o.retryBaseDelayMs !== 'number' || !Number.isFinite(o.retryBaseDelayMs) || o.retryBaseDelayMs < 0)
  ) {
    throw new OptionsError('retryBaseDelayMs', `expected a number of milliseconds >= 0, got ${String(o.retryBaseDelayMs)}`);
  }
  if (o.client !== undefined) {
    // Duck-typed: a host may bring its own copy of @aws-sdk/client-s3.
    const c = o.client as unknown as { send?: unknown; config?: { region?: unknown; credentials?: unknown } };
    if (typeof c !== 'object' || c === null || typeof c.send !== 'function' || typeof c.config?.region !== 'function') {
      throw new OptionsError('client', 'expected an S3Client from @aws-sdk/client-s3');
    }
    const clash = (['endpoint', 'region', 'credentials', 'forcePathStyle'] as const).find((k) => o[k] !== undefined);
    if (clash) {
      throw new OptionsError(clash, 'give either a client or endpoint/region/credentials/forcePathStyle, not both: configure the client itself');
    }
  }
}

export function settingsOf(o: { requestTimeoutMs?: number; maxAttempts?: number; retryBaseDelayMs?: number }): ResolvedSettings {
  return {
    requestTimeoutMs: o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    maxAttempts: o.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    retryBaseDelayMs: o.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS,
  };
}

/** Most GETs a reader keeps open across iterations (`maxOpenReads`): each holds a socket while paused. */
export const MAX_OPEN_READS = 256;
/**
 * Sockets per client: room for every open read besides the GETs and uploads in flight. A request
 * queued behind sockets held by paused reads would wait until they time out.
 */
const MAX_SOCKETS = 1024;

/**
 * Builds an S3 client whose timeouts really fail a request: `requestTimeoutMs` bounds the time
 * to the response headers (`throwOnRequestTimeout`), the connect phase and any idle socket
 * (a stalled body), and whose retries back off exponentially from `retryBaseDelayMs`.
 */
export function createS3Client(config: S3StorageConfig): S3Client {
  const s = settingsOf(config);
  const requestHandler = new NodeHttpHandler({
    requestTimeout: s.requestTimeoutMs,
    throwOnRequestTimeout: true,
    connectionTimeout: Math.min(s.requestTimeoutMs, 10_000),
    socketTimeout: s.requestTimeoutMs,
    httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
    httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
  });
  const client = new S3Client({
    region: config.region,
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
    ...(config.forcePathStyle !== undefined ? { forcePathStyle: config.forcePathStyle } : {}),
    ...(config.credentials !== undefined ? { credentials: { ...config.credentials } } : {}),
    requestHandler,
    retryStrategy: new ConfiguredRetryStrategy(s.maxAttempts, (attempt: number) =>
      backoffDelay(attempt, s.retryBaseDelayMs, MAX_RETRY_DELAY_MS),
    ),
  });
  // Object bodies go up unsigned (SigV4 still signs the request): hashing every byte with SHA-256
  // for the signature cost more CPU than anything else the client does per byte. Integrity stays
  // end to end: the SDK sends each body's CRC32 (x-amz-checksum-crc32), which S3 checks.
  // The header must be in place before the signer (finalizeRequest) runs, hence the build step:
  // the signer takes the payload hash from it. Set after signing (as a 'high' finalizeRequest
  // middleware was: it lands after the signer), the body is still hashed and
  // the signature covers a hash the header no longer names, which real S3 rejects
  // (SignatureDoesNotMatch) and moto, which checks no signature, accepts.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (UNSIGNED_BODY_COMMANDS.has(context.commandName ?? '') && request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 's3scUnsignedPayload' },
  );
  return client;
}

const UNSIGNED_BODY_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);
