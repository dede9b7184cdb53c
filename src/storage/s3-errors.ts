/** What an S3 call threw, as a typed error: a stable code, `retryable`, and a message that names the fix. */
import { AbortError, CompactorError, StorageError, type StorageErrorCode } from '../errors.js';

export interface ErrorContext {
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

export function describeTarget(operation: string, key: string | undefined, ctx: ErrorContext): string {
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
