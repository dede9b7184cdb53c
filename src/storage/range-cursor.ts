/**
 * One GET kept open across reads of one object, each read further into it: the body is read up
 * to the end of one read and paused (TCP holds the rest back) until the next. An iteration of a
 * run over sources larger than the memory limit needs a stream range of every source, so without
 * this every source cost a GET per iteration, and a request costs more than its bytes (measured:
 * 864 GETs for 256 MiB of SSOs under a 64 MiB limit, 288 with cursors).
 *
 * Failures follow a plain GET's rules (fetch-range.ts): an error before the body (after the
 * SDK's own retries) fails the read; a body failing after the headers (cut, reset, stalled, or
 * its socket timed out while paused between reads) ends the cursor, and the rest of that read
 * comes from a plain GET resumed from the next byte, unless `maxAttempts` is 1. The owner opens
 * a new cursor for the reads after.
 */
import type { Readable } from 'node:stream';
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { onAbort, abortReason } from '../util/async.js';
import { StorageError } from '../errors.js';
import { destroyBody, fetchRange, type RangeIo } from './fetch-range.js';
import { GetObjectCommand } from './s3-client.js';
import type { RangeCursor, RangeSink } from './types.js';

/**
 * Memory a paused cursor costs the process, outside any budget: the rest of the chunk that crossed
 * the end of its last read, what Node buffered before the socket stopped reading (80-128 KiB
 * measured, with 64 KiB socket reads), and the request's own objects. Measured on Node 20: RSS
 * 286-347 KiB a cursor for 64 and 128 paused cursors.
 */
export const CURSOR_MEMORY = 384 * 1024;

/** Bytes a cursor reads through (and drops) to reach the start of a read rather than give up. */
const MAX_SKIP = 1024 * 1024;

export function openRangeCursor(io: RangeIo, key: string, start: number, end: number): RangeCursor {
  return new S3RangeCursor(io, key, start, end);
}

class S3RangeCursor implements RangeCursor {
  private pos: number;
  private body: Readable | undefined;
  /** Bytes of the last chunk past the end of the previous read. */
  private left: Uint8Array | undefined;
  private ended = false;
  private busy = false;

  constructor(
    private readonly io: RangeIo,
    readonly key: string,
    start: number,
    /** Where the GET ends: the end of the last byte the run needs from the object. */
    private readonly end: number,
  ) {
    this.pos = start;
  }

  get position(): number {
    return this.pos;
  }

  get reading(): boolean {
    return this.busy;
  }

  canRead(start: number, end: number): boolean {
    return !this.ended && !this.busy && start >= this.pos && start - this.pos <= MAX_SKIP && end <= this.end;
  }

  async read(start: number, end: number, sink: RangeSink, signal?: AbortSignal): Promise<void> {
    if (!this.canRead(start, end)) throw this.io.storageError('ERR_STORAGE_INVALID_REQUEST', 'GetObject', this.key, `a cursor at ${this.pos} cannot read [${start}, ${end})`);
    this.busy = true;
    try {
      // Bytes read through to reach `start` move too.
      await this.io.takeBandwidth(end - this.pos, signal, 'GetObject', this.key);
      let body: Readable;
      try {
        body = this.body ?? (await this.open(signal));
      } catch (err) {
        this.close();
        throw this.io.err(err, 'GetObject', this.key);
      }
      try {
        await this.pump(body, start, end, sink, signal);
      } catch (err) {
        this.close();
        const e = this.io.err(err, 'GetObject', this.key);
        if (signal?.aborted || !(e instanceof StorageError) || !e.retryable || this.io.settings.maxAttempts <= 1) throw e;
        // The rest of this read, as a plain GET resumes a cut body (its bandwidth is taken).
        const from = Math.max(start, this.pos);
        const offset = from - start;
        const rest: RangeSink = { byteLength: end - from, set: (chunk: Uint8Array, at: number) => sink.set(chunk, offset + at) };
        await fetchRange(this.io, 'GetObject', this.key, from, end, signal, rest);
      }
    } finally {
      this.busy = false;
    }
  }

  get closed(): boolean {
    return this.ended;
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.left = undefined;
    destroyBody(this.body);
    this.body = undefined;
  }

  private async open(signal: AbortSignal | undefined): Promise<Readable> {
    const cmd = new GetObjectCommand({ Bucket: this.io.bucket, Key: this.key, Range: `bytes=${this.pos}-${this.end - 1}` });
    const body = await this.io.send<GetObjectCommandOutput, Readable>('GetObject', this.key, cmd, signal, (out) => {
      const b = out.Body as Readable | undefined;
      if (!b) throw this.io.storageError('ERR_STORAGE_CONTENT', 'GetObject', this.key, 'the response has no body');
      if (out.ContentLength !== undefined && out.ContentLength !== this.end - this.pos) {
        destroyBody(b);
        throw this.io.storageError('ERR_STORAGE_CONTENT', 'GetObject', this.key, `asked for ${this.end - this.pos} bytes from byte ${this.pos} but the response has ${out.ContentLength}`);
      }
      return b;
    });
    if (this.ended) {
      destroyBody(body);
      throw this.io.storageError('ERR_STORAGE_INVALID_REQUEST', 'GetObject', this.key, 'the cursor was closed while it opened');
    }
    body.pause();
    // Paused between reads, the body may still fail (its socket timing out): the next read sees
    // the cursor closed and its owner reads without it. Never an unhandled 'error'.
    body.on('error', () => this.close());
    this.body = body;
    return body;
  }

  /** Reads the body until `end`, writing [start, end) into `sink`; keeps what comes past `end` for the next read. */
  private pump(body: Readable, start: number, end: number, sink: RangeSink, signal: AbortSignal | undefined): Promise<void> {
    const take = (chunk: Uint8Array): boolean => {
      let c = chunk;
      if (this.pos < start) {
        const skip = Math.min(c.byteLength, start - this.pos);
        c = c.subarray(skip);
        this.pos += skip;
      }
      const n = Math.min(c.byteLength, end - this.pos);
      if (n > 0) sink.set(c.subarray(0, n), this.pos - start);
      this.pos += n;
      if (n < c.byteLength) this.left = c.subarray(n);
      return this.pos === end;
    };
    const left = this.left;
    this.left = undefined;
    if (left && take(left)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const arm = () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(
          () => finish(Object.assign(new Error(`no body bytes for ${this.io.settings.requestTimeoutMs} ms (stalled response)`), { name: 'TimeoutError', code: 'ETIMEDOUT' })),
          this.io.settings.requestTimeoutMs,
        );
      };
      const finish = (err?: unknown) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        offAbort();
        body.pause();
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('close', onClose);
        body.off('error', onError);
        if (err !== undefined) reject(err);
        else resolve();
      };
      const onData = (chunk: Uint8Array) => {
        if (take(chunk)) finish();
        else arm();
      };
      const onEnd = () => finish(Object.assign(new Error(`body ended at byte ${this.pos}, before ${end}`), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
      const onClose = () => setImmediate(() => finish(Object.assign(new Error('body closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })));
      const onError = (err: unknown) => finish(err);
      const offAbort = onAbort(signal, () => finish(abortReason(signal!)));
      arm();
      body.on('data', onData);
      body.once('end', onEnd);
      body.once('close', onClose);
      body.once('error', onError);
      body.resume();
    });
  }
}
