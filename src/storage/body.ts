/** Reading a response body into where its bytes go, with an idle deadline and abort. */
import type { Readable } from 'node:stream';
import { abortReason, onAbort } from '../util/async.js';
import type { StorageError } from '../errors.js';
import type { RangeSink } from './types.js';

export interface ReadState {
  /** Bytes written into the target so far. */
  pos: number;
}

/**
 * Copies a response body into `target` from `state.pos`, failing when it overflows the target,
 * when no byte arrives for `idleMs`, or when `signal` aborts. `state.pos` tracks progress even
 * when this rejects, so the caller can resume.
 *
 * With `pause`, the body is longer than this read: it stops at `expectedEnd` and is paused there,
 * the bytes of the last chunk past it put back (`unshift`) for the next read of the same body
 * (a cursor, range-cursor.ts), instead of failing as an overflow.
 */
export function readBodyInto(
  body: Readable,
  target: RangeSink,
  state: ReadState,
  expectedEnd: number,
  idleMs: number,
  signal: AbortSignal | undefined,
  overflow: () => StorageError,
  opts: { pause?: boolean } = {},
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
      if (opts.pause && state.pos + chunk.byteLength >= expectedEnd) {
        const n = expectedEnd - state.pos;
        target.set(chunk.subarray(0, n), state.pos);
        state.pos += n;
        body.pause();
        if (n < chunk.byteLength) body.unshift(chunk.subarray(n));
        finish();
        return;
      }
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
    // A paused body (a cursor's, between reads) stays paused when a 'data' listener is added.
    body.resume();
    arm();
  });
}
