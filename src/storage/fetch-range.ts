/**
 * One GET's bytes, resumed when the body fails after the headers (cut, reset, stalled): the SDK
 * retries a request until its response headers arrive, never a body read after them.
 */
import type { Readable } from 'node:stream';
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { AbortError, StorageError, type StorageErrorCode } from '../errors.js';
import { backoffDelay, sleep } from '../util/async.js';
import { readBodyInto, type ReadState } from './body.js';
import { GetObjectCommand, MAX_RETRY_DELAY_MS, type ResolvedSettings } from './s3-client.js';
import type { RangeSink } from './types.js';

/** A resumed body must bring at least this much (or the rest) to count as progress. */
const MIN_RESUME_PROGRESS = 64 * 1024;
/** Resumes of one GET's body, however much each brought. */
const MAX_BODY_RESUMES = 32;

/** What a GET needs of its `S3Storage`. */
export interface RangeIo {
  readonly bucket: string;
  readonly settings: Pick<ResolvedSettings, 'requestTimeoutMs' | 'maxAttempts' | 'retryBaseDelayMs'>;
  /** One command, retried by the SDK until its headers; `use` reads the body while the request's signal is live. */
  send<O, R>(operation: string, key: string | undefined, command: object, signal: AbortSignal | undefined, use: (out: O, signal: AbortSignal) => Promise<R> | R): Promise<R>;
  storageError(code: StorageErrorCode, operation: string, key: string, message: string): StorageError;
  err(err: unknown, operation: string, key?: string): StorageError | AbortError;
  /** Waits for the bandwidth limit, when there is one. */
  takeBandwidth(bytes: number, signal: AbortSignal | undefined, operation: string, key: string): Promise<void>;
}

/**
 * GETs bytes [start, end) — or the whole object when `end` is undefined — into `into` when given
 * (its `byteLength` is `end - start`), else into an unpooled ArrayBuffer of its own. A body
 * failing after the headers (cut, reset, stalled) is resumed from the next byte with If-Match on
 * the first response's ETag; `maxAttempts` bounds consecutive failures that made no real
 * progress (64 KiB, or the rest), and 32 resumes bound the whole GET.
 */
export async function fetchRange<T extends RangeSink = Uint8Array<ArrayBuffer>>(
  io: RangeIo,
  operation: string,
  key: string,
  start: number,
  end: number | undefined,
  signal?: AbortSignal,
  into?: T,
): Promise<T> {
  if (end !== undefined) await io.takeBandwidth(end - start, signal, operation, key);
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
      Bucket: io.bucket,
      Key: key,
      ...(range !== undefined ? { Range: range } : {}),
      ...(etag !== undefined ? { IfMatch: etag } : {}),
    });
    let bodyError: unknown;
    try {
      await io.send<GetObjectCommandOutput, void>(operation, key, cmd, signal, async (out, sig) => {
        const body = out.Body as Readable | undefined;
        const length = out.ContentLength;
        etag ??= out.ETag;
        const remaining = (target ? target.byteLength : (length ?? 0) + state.pos) - state.pos;
        if (!target) {
          if (length === undefined) {
            destroyBody(body);
            throw io.storageError('ERR_STORAGE_CONTENT', operation, key, 'the response has no Content-Length');
          }
          target = unpooled(length);
        }
        if (length !== undefined && length !== remaining) {
          destroyBody(body);
          throw io.storageError(
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
        if (!body) throw io.storageError('ERR_STORAGE_CONTENT', operation, key, 'the response has no body');
        const t = target;
        try {
          await readBodyInto(body, t, state, t.byteLength, io.settings.requestTimeoutMs, sig, () =>
            io.storageError('ERR_STORAGE_CONTENT', operation, key, `the body is longer than the ${remaining} bytes asked from byte ${from}`),
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
      if (failures >= io.settings.maxAttempts || resumes >= MAX_BODY_RESUMES) {
        throw new StorageError(
          err.code as StorageErrorCode,
          `${err.message} (body failed ${failures} time(s) in a row and ${resumes} in all, ${state.pos} of ${target?.byteLength ?? '?'} bytes received)`,
          { operation, key, ...(err.status !== undefined ? { status: err.status } : {}) },
          { retryable: true, cause: err },
        );
      }
      try {
        await sleep(backoffDelay(failures, io.settings.retryBaseDelayMs, MAX_RETRY_DELAY_MS), signal);
      } catch (abortErr) {
        throw io.err(abortErr, operation, key);
      }
    }
  }
}

/** A Uint8Array over its own ArrayBuffer (never the Buffer pool): transferable without a copy. */
export function unpooled(length: number): Uint8Array<ArrayBuffer> {
  const b = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, length);
}

export function destroyBody(body: unknown): void {
  const b = body as Readable | undefined;
  if (b && typeof b.destroy === 'function' && !b.destroyed) {
    b.on('error', () => {});
    b.destroy();
  }
}
