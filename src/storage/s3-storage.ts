import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { BandwidthLimiter } from './bandwidth.js';
import { AbortError, CompactorError, OptionsError, StateError, StorageError, type StorageErrorCode } from '../errors.js';
import { objectKey } from '../format/keys.js';
import { S3_MIN_PART_SIZE } from './part-size.js';
import { instrumentClient, RequestSampleSender, type S3RequestListener } from './request-samples.js';
import { abortReason, backoffDelay, linkedController, onAbort, raceAbort, sleep } from '../util/async.js';
import type {
  CompletedPart,
  MultipartUploadInfo,
  ObjectInfo,
  ObjectStorage,
  RangeSink,
  RequestOptions,
  S3StorageConfig,
  WriteOptions,
} from './types.js';

// The SDK through require, not import: imported from ESM, a CommonJS module is first scanned by
// Node's export lexer for its named exports, and over the SDK's bundles that is ~40-60 ms of every
// thread's start (measured: import 86-119 ms, require 53-59 ms). The modules are the same either
// way (one CommonJS cache), so a host's own S3Client is still an S3Client here.
const require = createRequire(import.meta.url);
const {
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
type S3Client = InstanceType<typeof S3Client>;
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

/** A resumed body must bring at least this much (or the rest) to count as progress. */
const MIN_RESUME_PROGRESS = 64 * 1024;
/** Resumes of one GET's body, however much each brought. */
const MAX_BODY_RESUMES = 32;


interface ResolvedSettings {
  requestTimeoutMs: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
}

// ---------------------------------------------------------------------------------------------
// Options

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

function validateOptions(o: S3StorageOptions): void {
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

function settingsOf(o: { requestTimeoutMs?: number; maxAttempts?: number; retryBaseDelayMs?: number }): ResolvedSettings {
  return {
    requestTimeoutMs: o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    maxAttempts: o.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    retryBaseDelayMs: o.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS,
  };
}

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
    httpAgent: { keepAlive: true, maxSockets: 64 },
    httpsAgent: { keepAlive: true, maxSockets: 64 },
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

// ---------------------------------------------------------------------------------------------
// Errors

interface ErrorContext {
  bucket?: string;
  endpoint?: string;
}

const RETRYABLE_NET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const THROTTLING_NAMES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequests']);

function describeTarget(operation: string, key: string | undefined, ctx: ErrorContext): string {
  const where = ctx.bucket !== undefined ? (key !== undefined ? `s3://${ctx.bucket}/${key}` : `bucket ${ctx.bucket}`) : key;
  return where !== undefined ? `${operation} ${where}` : operation;
}

/**
 * Maps anything an S3 call threw to a typed error: a StorageError with a stable code and
 * `retryable`, or an AbortError when the call was cancelled. The message names the operation,
 * the bucket/key and the fix where there is one.
 */
export function toStorageError(
  err: unknown,
  operation: string,
  key?: string,
  ctx: ErrorContext = {},
): StorageError | AbortError {
  if (err instanceof StorageError || err instanceof AbortError) return err;
  if (err instanceof CompactorError && err.code === 'ERR_ABORTED') return new AbortError(err.message, { cause: err });
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    Code?: unknown;
    $metadata?: { httpStatusCode?: number; attempts?: number };
    $response?: { statusCode?: number };
  };
  const name = typeof e.name === 'string' ? e.name : '';
  const code = typeof e.code === 'string' ? e.code : typeof e.Code === 'string' ? e.Code : '';
  const rawMessage = typeof e.message === 'string' ? e.message : String(err);
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  const attempts = e.$metadata?.attempts;
  const target = describeTarget(operation, key, ctx);
  const after = attempts !== undefined && attempts > 1 ? ` after ${attempts} attempts` : '';
  const detail = rawMessage && rawMessage !== name && rawMessage !== 'UnknownError' ? `: ${rawMessage}` : '';
  const make = (c: StorageErrorCode, msg: string, retryable: boolean) =>
    new StorageError(c, msg, { operation, ...(key !== undefined ? { key } : {}), ...(status !== undefined ? { status } : {}) }, {
      cause: err,
      retryable,
    });

  if (name === 'AbortError' || code === 'ABORT_ERR') return new AbortError(`${target} was aborted`, { cause: err });

  const sdkCode = name || code;
  // Timeouts: the SDK's request/connect/socket timeouts, S3's RequestTimeout (400), our idle timer.
  if (name === 'TimeoutError' || code === 'ETIMEDOUT' || sdkCode === 'RequestTimeout' || sdkCode === 'RequestTimeoutException') {
    return make('ERR_STORAGE_TIMEOUT', `${target} timed out${after}${detail}`, true);
  }
  if (status !== undefined && status > 0) {
    if (status === 503 || THROTTLING_NAMES.has(sdkCode)) {
      return make('ERR_STORAGE_UNAVAILABLE', `${target} was throttled (${sdkCode || status})${after}: reduce the request rate or concurrency`, true);
    }
    if (status >= 500) {
      return make('ERR_STORAGE_UNAVAILABLE', `${target} failed with HTTP ${status} (${sdkCode || 'server error'})${after}${detail}`, true);
    }
    if (status === 403) {
      return make(
        'ERR_STORAGE_ACCESS_DENIED',
        `${target}: access denied (${sdkCode || 403})${detail}: check the credentials and the bucket policy`,
        false,
      );
    }
    if (status === 404 || sdkCode === 'NoSuchKey' || sdkCode === 'NoSuchBucket' || sdkCode === 'NoSuchUpload') {
      const why =
        sdkCode === 'NoSuchBucket'
          ? `bucket ${ctx.bucket ?? ''} does not exist: create it or fix the "bucket" option`
          : sdkCode === 'NoSuchUpload'
            ? 'the multipart upload does not exist (completed or aborted already)'
            : 'the object does not exist';
      return make('ERR_STORAGE_NOT_FOUND', `${target}: ${why}`, false);
    }
    if (status === 412 || sdkCode === 'PreconditionFailed') {
      return make('ERR_STORAGE_PRECONDITION', `${target}: precondition failed (the object changed or already exists)`, false);
    }
    if (THROTTLING_NAMES.has(sdkCode) || status === 429) {
      return make('ERR_STORAGE_UNAVAILABLE', `${target} was throttled (${sdkCode || status})${after}: reduce the request rate`, true);
    }
    if (status >= 400) {
      const hint =
        sdkCode === 'EntityTooSmall'
          ? ': every multipart part but the last must be at least 5 MiB'
          : sdkCode === 'InvalidPart' || sdkCode === 'InvalidPartOrder'
            ? ': a part is missing, out of order or its ETag does not match'
            : sdkCode === 'InvalidRange'
              ? ': the range starts past the end of the object'
              : '';
      return make('ERR_STORAGE_INVALID_REQUEST', `${target}: invalid request (HTTP ${status} ${sdkCode})${detail}${hint}`, false);
    }
  }
  if (THROTTLING_NAMES.has(sdkCode)) {
    return make('ERR_STORAGE_UNAVAILABLE', `${target} was throttled (${sdkCode})${after}`, true);
  }
  if (code === 'NoSuchKey' || code === 'NoSuchBucket' || code === 'NoSuchUpload') {
    return make('ERR_STORAGE_NOT_FOUND', `${target}: ${code}`, false);
  }
  if (code === 'AccessDenied') return make('ERR_STORAGE_ACCESS_DENIED', `${target}: access denied: check the credentials and the bucket policy`, false);
  if (code === 'InternalError' || code === 'ServiceUnavailable') return make('ERR_STORAGE_UNAVAILABLE', `${target} failed (${code})${detail}`, true);
  if (RETRYABLE_NET_CODES.has(code) || /socket hang up|ECONNRESET|aborted|premature close|other side closed/i.test(rawMessage)) {
    const fix = UNREACHABLE_CODES.has(code) && ctx.endpoint ? `: is the S3 endpoint ${ctx.endpoint} reachable?` : '';
    return make('ERR_STORAGE_UNAVAILABLE', `${target} failed: connection error (${code || rawMessage})${after}${fix}`, true);
  }
  return make('ERR_STORAGE_UNKNOWN', `${target} failed${after}${detail || `: ${name || 'unknown error'}`}`, false);
}

// ---------------------------------------------------------------------------------------------
// Body reading

interface ReadState {
  /** Bytes written into the target so far. */
  pos: number;
}

/**
 * Copies a response body into `target` from `state.pos`, failing when it overflows the target,
 * when no byte arrives for `idleMs`, or when `signal` aborts. `state.pos` tracks progress even
 * when this rejects, so the caller can resume.
 */
function readBodyInto(
  body: Readable,
  target: RangeSink,
  state: ReadState,
  expectedEnd: number,
  idleMs: number,
  signal: AbortSignal | undefined,
  overflow: () => StorageError,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      offAbort();
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      if (err !== undefined) {
        body.on('error', () => {}); // late errors of a destroyed body must not crash the process
        if (!body.destroyed) body.destroy();
        reject(err);
      } else resolve();
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        finish(
          Object.assign(new Error(`no body bytes for ${idleMs} ms (stalled response)`), { name: 'TimeoutError', code: 'ETIMEDOUT' }),
        );
      }, idleMs);
    };
    const onData = (chunk: Uint8Array) => {
      if (state.pos + chunk.byteLength > expectedEnd) {
        finish(overflow());
        return;
      }
      target.set(chunk, state.pos);
      state.pos += chunk.byteLength;
      arm();
    };
    const onEnd = () => {
      if (state.pos === expectedEnd) finish();
      else {
        finish(
          Object.assign(new Error(`body ended after ${state.pos} of ${expectedEnd} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' }),
        );
      }
    };
    const onError = (err: unknown) => finish(err);
    const onClose = () => {
      // 'close' without 'end': destroyed underneath us.
      setImmediate(() =>
        finish(Object.assign(new Error('body closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })),
      );
    };
    const offAbort = onAbort(signal, () => finish(abortReason(signal!)));
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
    arm();
  });
}

// ---------------------------------------------------------------------------------------------
// Storage

export class S3Storage implements ObjectStorage {
  readonly bucket: string;
  readonly namespace: string;
  readonly minPartSize: number;
  readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly settings: ResolvedSettings;
  private readonly options: S3StorageOptions;
  private readonly endpointForMessages: string | undefined;
  private closed = false;
  private readonly requestListeners = new Set<S3RequestListener>();
  private readonly uninstrument: () => void;
  private sampleSender: RequestSampleSender | undefined;
  /** The compactor's bandwidth limit, when its threads were given one (`S3StorageConfig.bandwidth`). */
  private bandwidth: BandwidthLimiter | undefined;

  constructor(options: S3StorageOptions) {
    validateOptions(options);
    this.options = { ...options };
    this.bucket = options.bucket;
    this.namespace = options.namespace;
    this.minPartSize = options.minPartSize ?? S3_MIN_PART_SIZE;
    this.settings = settingsOf(options);
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
      this.endpointForMessages = undefined;
    } else {
      this.client = createS3Client({
        bucket: options.bucket,
        namespace: options.namespace,
        region: options.region ?? process.env.AWS_REGION ?? DEFAULT_REGION,
        ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
        ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
        ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
        ...this.settings,
      });
      this.ownsClient = true;
      this.endpointForMessages = options.endpoint;
    }
    this.uninstrument = instrumentClient(this.client, (sample) => {
      for (const l of this.requestListeners) l(sample);
    });
  }

  /**
   * Told about every S3 request attempt of this storage (operation, latency, error code), for
   * metrics. Returns the unsubscriber.
   */
  onRequest(listener: S3RequestListener): () => void {
    this.requestListeners.add(listener);
    return () => this.requestListeners.delete(listener);
  }

  /** Builds a storage (with its own client) from plain configuration, e.g. in a worker thread. */
  static fromConfig(config: S3StorageConfig): S3Storage {
    const storage = new S3Storage({
      bucket: config.bucket,
      namespace: config.namespace,
      region: config.region,
      ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
      ...(config.forcePathStyle !== undefined ? { forcePathStyle: config.forcePathStyle } : {}),
      ...(config.credentials !== undefined ? { credentials: config.credentials } : {}),
      ...(config.requestTimeoutMs !== undefined ? { requestTimeoutMs: config.requestTimeoutMs } : {}),
      ...(config.maxAttempts !== undefined ? { maxAttempts: config.maxAttempts } : {}),
      ...(config.retryBaseDelayMs !== undefined ? { retryBaseDelayMs: config.retryBaseDelayMs } : {}),
    });
    if (config.bandwidth !== undefined) storage.bandwidth = new BandwidthLimiter(config.bandwidth);
    if (config.requestsChannel !== undefined) {
      storage.sampleSender = new RequestSampleSender(config.requestsChannel);
      storage.onRequest(storage.sampleSender.push);
    }
    return storage;
  }

  keyOf(objectId: number): string {
    return objectKey(objectId, this.namespace);
  }

  // -- plumbing -------------------------------------------------------------------------------

  private ctx(): ErrorContext {
    return { bucket: this.bucket, ...(this.endpointForMessages !== undefined ? { endpoint: this.endpointForMessages } : {}) };
  }

  private err(err: unknown, operation: string, key?: string): StorageError | AbortError {
    return toStorageError(err, operation, key, this.ctx());
  }

  /**
   * Sends one command (the SDK retries it) with a per-call child signal, so a caller's signal
   * holds one listener per call at most and loses it when the call ends. `use` runs while the
   * child signal is still live (a body read).
   */
  private async send<O, R>(
    operation: string,
    key: string | undefined,
    command: object,
    signal: AbortSignal | undefined,
    use: (out: O, signal: AbortSignal) => Promise<R> | R,
  ): Promise<R> {
    if (this.closed) throw new StateError('ERR_CLOSED', `${describeTarget(operation, key, this.ctx())}: the storage is closed`);
    if (signal?.aborted) throw this.err(abortReason(signal), operation, key);
    const { controller, dispose } = linkedController(signal);
    try {
      const out = (await raceAbort(
        this.client.send(command as never, { abortSignal: controller.signal as never }) as Promise<unknown>,
        controller.signal,
      )) as O;
      return await use(out, controller.signal);
    } catch (err) {
      throw this.err(err, operation, key);
    } finally {
      dispose();
    }
  }

  private storageError(code: StorageErrorCode, operation: string, key: string, message: string, retryable = false, cause?: unknown) {
    return new StorageError(code, `${describeTarget(operation, key, this.ctx())}: ${message}`, { operation, key }, {
      retryable,
      ...(cause !== undefined ? { cause } : {}),
    });
  }

  /**
   * GETs bytes [start, end) — or the whole object when `end` is undefined — into one unpooled
   * ArrayBuffer. A body failing after the headers (cut, reset, stalled) is resumed from the next
   * byte with If-Match on the first response's ETag; `maxAttempts` bounds consecutive failures
   * that made no real progress (64 KiB, or the rest), and 32 resumes bound the whole GET.
   */
  /** Waits for the bandwidth limit (when there is one); an abort while waiting is this request's, typed. */
  private async takeBandwidth(bytes: number, signal: AbortSignal | undefined, operation: string, key: string): Promise<void> {
    if (!this.bandwidth) return;
    try {
      await this.bandwidth.take(bytes, signal);
    } catch (e) {
      throw this.err(e, operation, key);
    }
  }

  /** Into `into` when given (its `byteLength` is `end - start`), else into a buffer of its own, returned. */
  private async fetchBytes<T extends RangeSink = Uint8Array<ArrayBuffer>>(
    operation: string,
    key: string,
    start: number,
    end: number | undefined,
    signal?: AbortSignal,
    into?: T,
  ): Promise<T> {
    if (end !== undefined) await this.takeBandwidth(end - start, signal, operation, key);
    const state: ReadState = { pos: 0 };
    let target: RangeSink | undefined = into ?? (end !== undefined ? unpooled(end - start) : undefined);
    let etag: string | undefined;
    let failures = 0;
    let resumes = 0;
    for (;;) {
      const from = start + state.pos;
      const range = end !== undefined ? `bytes=${from}-${end - 1}` : state.pos > 0 ? `bytes=${from}-` : undefined;
      const progressBefore = state.pos;
      const cmd = new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ...(range !== undefined ? { Range: range } : {}),
        ...(etag !== undefined ? { IfMatch: etag } : {}),
      });
      let bodyError: unknown;
      try {
        await this.send<GetObjectCommandOutput, void>(operation, key, cmd, signal, async (out, sig) => {
          const body = out.Body as Readable | undefined;
          const length = out.ContentLength;
          etag ??= out.ETag;
          const remaining = (target ? target.byteLength : (length ?? 0) + state.pos) - state.pos;
          if (!target) {
            if (length === undefined) {
              destroyBody(body);
              throw this.storageError('ERR_STORAGE_CONTENT', operation, key, 'the response has no Content-Length');
            }
            target = unpooled(length);
          }
          if (length !== undefined && length !== remaining) {
            destroyBody(body);
            throw this.storageError(
              'ERR_STORAGE_CONTENT',
              operation,
              key,
              `asked for ${remaining} bytes from byte ${from} but the response has ${length}` +
                `${out.ContentRange ? ` (Content-Range ${out.ContentRange})` : ''}: the object is ${length < remaining ? 'shorter' : 'longer'} than expected`,
            );
          }
          if (remaining === 0) {
            destroyBody(body);
            return;
          }
          if (!body) throw this.storageError('ERR_STORAGE_CONTENT', operation, key, 'the response has no body');
          const t = target;
          try {
            await readBodyInto(body, t, state, t.byteLength, this.settings.requestTimeoutMs, sig, () =>
              this.storageError('ERR_STORAGE_CONTENT', operation, key, `the body is longer than the ${remaining} bytes asked from byte ${from}`),
            );
          } catch (err) {
            bodyError = err;
            throw err;
          }
        });
        return target as T;
      } catch (err) {
        // Errors before the body were retried by the SDK already; content errors and aborts are final.
        if (bodyError === undefined || !(err instanceof StorageError) || !err.retryable) throw err;
        // Progress forgives earlier failures, but only real progress: a body cut after a few bytes
        // every time would otherwise resume forever (a livelock the fault matrix found). Resumes
        // are bounded in total as well.
        resumes++;
        const wanted = (target?.byteLength ?? state.pos) - progressBefore;
        failures = state.pos - progressBefore >= Math.min(MIN_RESUME_PROGRESS, wanted) ? 1 : failures + 1;
        if (failures >= this.settings.maxAttempts || resumes >= MAX_BODY_RESUMES) {
          throw new StorageError(
            err.code as StorageErrorCode,
            `${err.message} (body failed ${failures} time(s) in a row and ${resumes} in all, ${state.pos} of ${target?.byteLength ?? '?'} bytes received)`,
            { operation, key, ...(err.status !== undefined ? { status: err.status } : {}) },
            { retryable: true, cause: err },
          );
        }
        try {
          await sleep(backoffDelay(failures, this.settings.retryBaseDelayMs, MAX_RETRY_DELAY_MS), signal);
        } catch (abortErr) {
          throw this.err(abortErr, operation, key);
        }
      }
    }
  }

  // -- ObjectStorage --------------------------------------------------------------------------

  /** Returns a Uint8Array over its own ArrayBuffer (byteOffset 0): transferable with zero copies. */
  async getRange(key: string, start: number, end: number, opts: RequestOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new StorageError(
        'ERR_STORAGE_INVALID_REQUEST',
        `GetObject s3://${this.bucket}/${key}: invalid range [${start}, ${end}): expected integers 0 <= start <= end`,
        { operation: 'GetObject', key },
      );
    }
    if (end === start) {
      if (opts.signal?.aborted) throw this.err(abortReason(opts.signal), 'GetObject', key);
      return unpooled(0);
    }
    return this.fetchBytes('GetObject', key, start, end, opts.signal);
  }

  /**
   * Bytes [start, end) of an object, each written once into `sink` at its position in the range
   * (a resumed body writes from where the cut one stopped): the caller decides where they land.
   */
  async getRangeInto(key: string, start: number, end: number, sink: RangeSink, opts: RequestOptions = {}): Promise<void> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || sink.byteLength !== end - start) {
      throw new StorageError(
        'ERR_STORAGE_INVALID_REQUEST',
        `GetObject s3://${this.bucket}/${key}: invalid range [${start}, ${end}) for a sink of ${sink.byteLength} bytes: expected integers 0 <= start <= end, end - start bytes`,
        { operation: 'GetObject', key },
      );
    }
    if (end === start) {
      if (opts.signal?.aborted) throw this.err(abortReason(opts.signal), 'GetObject', key);
      return;
    }
    await this.fetchBytes('GetObject', key, start, end, opts.signal, sink);
  }

  async getObject(key: string, opts: RequestOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
    return this.fetchBytes('GetObject', key, 0, undefined, opts.signal);
  }

  async headObject(key: string, opts: RequestOptions = {}): Promise<ObjectInfo | undefined> {
    try {
      return await this.send('HeadObject', key, new HeadObjectCommand({ Bucket: this.bucket, Key: key }), opts.signal, (out: {
        ContentLength?: number;
        LastModified?: Date;
      }) => ({ key, size: out.ContentLength ?? 0, lastModified: out.LastModified }));
    } catch (err) {
      if (err instanceof StorageError && err.code === 'ERR_STORAGE_NOT_FOUND') {
        // HEAD has no body: S3 answers a missing key (and a missing bucket) with a bare 404.
        return undefined;
      }
      throw err;
    }
  }

  async putObject(key: string, body: Uint8Array, opts: WriteOptions = {}): Promise<void> {
    await this.takeBandwidth(body.byteLength, opts.signal, 'PutObject', key);
    try {
      await this.send(
        'PutObject',
        key,
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.byteLength, ...(opts.ifNoneMatch ? { IfNoneMatch: '*' } : {}) }),
        opts.signal,
        () => undefined,
      );
    } catch (err) {
      // A retry of a PUT whose response was lost finds its own object: that is success.
      if (!(opts.ifNoneMatch && isPrecondition(err) && (await this.etagIs(key, `"${md5(body)}"`, opts.signal)))) throw this.refusedOverwrite(err, 'PutObject', key);
    }
  }

  async createMultipartUpload(key: string, opts: RequestOptions = {}): Promise<string> {
    return this.send(
      'CreateMultipartUpload',
      key,
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }),
      opts.signal,
      (out: { UploadId?: string }) => {
        if (!out.UploadId) throw this.storageError('ERR_STORAGE_UNKNOWN', 'CreateMultipartUpload', key, 'the response has no UploadId');
        return out.UploadId;
      },
    );
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array, opts: RequestOptions = {}): Promise<CompletedPart> {
    if (!Number.isSafeInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
      throw new StorageError('ERR_STORAGE_INVALID_REQUEST', `UploadPart s3://${this.bucket}/${key}: part number ${partNumber} is not in 1..10000`, {
        operation: 'UploadPart',
        key,
      });
    }
    await this.takeBandwidth(body.byteLength, opts.signal, 'UploadPart', key);
    return this.send(
      'UploadPart',
      key,
      new UploadPartCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: body.byteLength,
      }),
      opts.signal,
      (out: { ETag?: string }) => {
        if (!out.ETag) throw this.storageError('ERR_STORAGE_UNKNOWN', 'UploadPart', key, `part ${partNumber}: the response has no ETag`);
        return { partNumber, etag: out.ETag };
      },
    );
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[], opts: WriteOptions = {}): Promise<void> {
    if (parts.length === 0) {
      throw new StorageError('ERR_STORAGE_INVALID_REQUEST', `CompleteMultipartUpload s3://${this.bucket}/${key}: no parts`, {
        operation: 'CompleteMultipartUpload',
        key,
      });
    }
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    try {
      await this.send(
        'CompleteMultipartUpload',
        key,
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: sorted.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
          ...(opts.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
        }),
        opts.signal,
        () => undefined,
      );
    } catch (err) {
      // A retried completion that finds the object these parts make (its multipart ETag) is ours.
      if (!(opts.ifNoneMatch && isPrecondition(err) && (await this.etagIs(key, multipartEtag(sorted), opts.signal)))) throw this.refusedOverwrite(err, 'CompleteMultipartUpload', key);
    }
  }

  /** Whether the object at `key` has this ETag now (false when it is missing or unreadable). */
  private async etagIs(key: string, etag: string | undefined, signal: AbortSignal | undefined): Promise<boolean> {
    if (etag === undefined) return false;
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), signal ? { abortSignal: signal } : {});
      return out.ETag === etag;
    } catch {
      return false;
    }
  }

  private refusedOverwrite(err: unknown, operation: string, key: string): unknown {
    if (!isPrecondition(err)) return err;
    return new StorageError(
      'ERR_STORAGE_PRECONDITION',
      `${operation} refused to overwrite s3://${this.bucket}/${key}: another object already exists there (If-None-Match: *); its id was handed out twice, or another writer used it`,
      { operation, key, status: 412 },
      { cause: err },
    );
  }

  async abortMultipartUpload(key: string, uploadId: string, opts: RequestOptions = {}): Promise<void> {
    try {
      await this.send(
        'AbortMultipartUpload',
        key,
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
        opts.signal,
        () => undefined,
      );
    } catch (err) {
      // Idempotent: an upload that is gone (aborted or completed) is what we wanted.
      if (err instanceof StorageError && err.code === 'ERR_STORAGE_NOT_FOUND' && isNoSuchUpload(err)) return;
      throw err;
    }
  }

  /** `pageSize` (S3Storage only): uploads per ListMultipartUploads page, default the server's (1000). */
  async listMultipartUploads(opts: RequestOptions & { prefix?: string; pageSize?: number } = {}): Promise<MultipartUploadInfo[]> {
    const out: MultipartUploadInfo[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.send(
        'ListMultipartUploads',
        opts.prefix,
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
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

  /** `pageSize` (S3Storage only): keys per ListObjectsV2 page, default the server's (1000). */
  async listObjects(opts: RequestOptions & { prefix?: string; pageSize?: number } = {}): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    for (;;) {
      const page = await this.send(
        'ListObjectsV2',
        opts.prefix,
        new ListObjectsV2Command({
          Bucket: this.bucket,
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

  async deleteObjects(keys: readonly string[], opts: RequestOptions = {}): Promise<void> {
    const unique = [...new Set(keys)];
    for (let i = 0; i < unique.length; i += DELETE_BATCH_SIZE) {
      const batch = unique.slice(i, i + DELETE_BATCH_SIZE);
      const errors = await this.send(
        'DeleteObjects',
        batch[0],
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
        opts.signal,
        (out: { Errors?: { Key?: string; Code?: string; Message?: string }[] }) => out.Errors ?? [],
      );
      // A missing key is deleted already.
      const real = errors.filter((e) => e.Code !== 'NoSuchKey');
      if (real.length > 0) {
        const first = real[0]!;
        const mapped = toStorageError(
          Object.assign(new Error(first.Message ?? first.Code ?? 'error'), {
            name: first.Code ?? 'Error',
            code: first.Code,
            $metadata: { httpStatusCode: statusOfS3Code(first.Code) },
          }),
          'DeleteObjects',
          first.Key,
          this.ctx(),
        );
        const listed = real
          .slice(0, 5)
          .map((e) => `${e.Key ?? '?'} (${e.Code ?? '?'})`)
          .join(', ');
        throw new StorageError(
          mapped instanceof StorageError ? (mapped.code as StorageErrorCode) : 'ERR_STORAGE_UNKNOWN',
          `DeleteObjects bucket ${this.bucket}: ${real.length} of ${batch.length} keys failed: ${listed}${real.length > 5 ? ', …' : ''}`,
          { operation: 'DeleteObjects', ...(first.Key !== undefined ? { key: first.Key } : {}) },
          { retryable: mapped.retryable, cause: mapped },
        );
      }
    }
  }

  async workerConfig(): Promise<S3StorageConfig> {
    const base = {
      bucket: this.bucket,
      namespace: this.namespace,
      requestTimeoutMs: this.settings.requestTimeoutMs,
      maxAttempts: this.settings.maxAttempts,
      retryBaseDelayMs: this.settings.retryBaseDelayMs,
    };
    if (this.ownsClient) {
      const o = this.options;
      return {
        ...base,
        region: o.region ?? process.env.AWS_REGION ?? DEFAULT_REGION,
        ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
        ...(o.forcePathStyle !== undefined ? { forcePathStyle: o.forcePathStyle } : {}),
        ...(o.credentials !== undefined ? { credentials: { ...o.credentials } } : {}),
      };
    }
    // A given client: hand its resolved settings to the workers.
    const config = this.client.config;
    const region = await config.region();
    const ep = config.endpoint ? await config.endpoint() : undefined;
    const creds = await config.credentials();
    const out: S3StorageConfig = { ...base, region };
    if (ep) out.endpoint = endpointUrl(ep);
    if (config.forcePathStyle !== undefined) out.forcePathStyle = config.forcePathStyle;
    if (creds) {
      out.credentials = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey };
      if (creds.sessionToken !== undefined) out.credentials.sessionToken = creds.sessionToken;
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sampleSender?.close();
    this.requestListeners.clear();
    this.uninstrument();
    if (this.ownsClient) this.client.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** A Uint8Array over its own ArrayBuffer (never the Buffer pool): transferable without a copy. */
function unpooled(length: number): Uint8Array<ArrayBuffer> {
  const b = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, length);
}

function destroyBody(body: unknown): void {
  const b = body as Readable | undefined;
  if (b && typeof b.destroy === 'function' && !b.destroyed) {
    b.on('error', () => {});
    b.destroy();
  }
}

function isPrecondition(err: unknown): boolean {
  return err instanceof StorageError && err.code === 'ERR_STORAGE_PRECONDITION';
}

function md5(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
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

function isNoSuchUpload(err: StorageError): boolean {
  const c = err.cause as { name?: unknown; Code?: unknown } | undefined;
  // AbortMultipartUpload's only 404 is NoSuchUpload (a missing bucket is NoSuchBucket).
  return c?.name !== 'NoSuchBucket' && c?.Code !== 'NoSuchBucket';
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

function endpointUrl(ep: { protocol: string; hostname: string; port?: number; path: string }): string {
  const protocol = ep.protocol.endsWith(':') ? ep.protocol : `${ep.protocol}:`;
  const host = ep.hostname.includes(':') && !ep.hostname.startsWith('[') ? `[${ep.hostname}]` : ep.hostname;
  const port = ep.port !== undefined ? `:${ep.port}` : '';
  const path = ep.path && ep.path !== '/' ? ep.path : '';
  return `${protocol}//${host}${port}${path}`;
}
