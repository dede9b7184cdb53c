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
import { StorageError } from '../errors.js';
import { readBodyInto, type ReadState } from './body.js';
import { destroyBody, fetchRange, type RangeIo } from './fetch-range.js';
import { GetObjectCommand } from './s3-client.js';
import type { RangeCursor, RangeSink } from './types.js';

/**
 * Memory a paused cursor costs the process, which the pipeline counts in the memory budget for
 * each read it keeps open (and the plan leaves free): what Node read before the socket stopped
 * (one socket read of up to 64 KiB in the socket, up to the response's 16 KiB high-water mark
 * and the rest of the last chunk in the response) and the request's own objects. Measured on
 * Node 20 against moto (bench/cursor-memory.mjs): 144 cursors paused at varied points of ranges
 * that end before their object does (as a run's do: never over the index) allocate ~155 KiB each
 * (ArrayBuffers 135-139, heap 15-20) and cost 255-288 KiB of RSS each, alone in a fresh process;
 * in a run (256 MiB of 144 SSOs, all open against none with the same data budget), 5-85 KiB each.
 */
export const CURSOR_MEMORY = 256 * 1024;

/** Bytes a cursor reads through (and drops) to reach the start of a read rather than give up. */
const MAX_SKIP = 1024 * 1024;

export function openRangeCursor(io: RangeIo, key: string, start: number, end: number): RangeCursor {
  return new S3RangeCursor(io, key, start, end);
}

class S3RangeCursor implements RangeCursor {
  private pos: number;
  private body: Readable | undefined;
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

  /**
   * Reads the body up to `end` (reading through the bytes before `start`) into `sink`, then
   * leaves it paused there, with the rest of the last chunk put back for the next read.
   */
  private async pump(body: Readable, start: number, end: number, sink: RangeSink, signal: AbortSignal | undefined): Promise<void> {
    const from = this.pos;
    const target: RangeSink = {
      byteLength: end - from,
      set: (chunk, at) => {
        const skip = Math.max(0, start - at);
        if (skip < chunk.byteLength) sink.set(chunk.subarray(skip), at + skip - start);
      },
    };
    const state: ReadState = { pos: from };
    try {
      await readBodyInto(body, target, state, end, this.io.settings.requestTimeoutMs, signal, () => this.io.storageError('ERR_STORAGE_CONTENT', 'GetObject', this.key, `the body passed byte ${end}`), { pause: true });
    } finally {
      this.pos = state.pos;
    }
  }
}
