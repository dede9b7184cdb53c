/**
 * Merger actor: puts the bytes the reader fetched (in whatever order GETs finished) into output
 * order, hands each segment to the uploader as its own buffer, and closes an output after its
 * last segment with the regrouped index and the footer. Data blocks are copied as they are,
 * never re-encoded.
 */
import { buildIndexAndFooter, regroupIndex } from '../format/index.js';
import { destKey, type MergerToUploader, type OutputSpec, type ReaderToMerger, type Segment } from '../messages/pipeline.js';
import { CompactorError } from '../errors.js';
import type { BudgetView, Outbox } from './io.js';

/** Largest chunk handed to the uploader in one message. */
const MAX_CHUNK = 4 * 1024 * 1024;
/** Longest stretch of work between two turns of the event loop. */
const YIELD_EVERY_MS = 20;

export class Merger {
  private readonly outputs: Map<string, OutputSpec>;
  /** Bytes received from the reader and not yet handed on: released here on failure. */
  private held = 0;
  private segments: Segment[] = [];
  private iteration = -1;
  private cursor = 0;
  private endSent = false;
  private readonly closed = new Set<string>();
  /** Flushes run one at a time, so segments, closes and the end go out in order. */
  private flushing: Promise<void> = Promise.resolve();
  private readonly arrived = new Map<number, Uint8Array>();

  constructor(
    outputs: readonly OutputSpec[],
    private readonly budget: BudgetView,
    private readonly out: Outbox<MergerToUploader>,
    /** Called with the bytes of each segment handed on: the reader's credit comes back. */
    private readonly onEmitted?: (bytes: number) => void,
  ) {
    this.outputs = new Map(outputs.map((o) => [destKey(o.dest), o]));
  }

  startIteration(iteration: number, segments: readonly Segment[]): void {
    this.iteration = iteration;
    this.segments = [...segments].sort((a, b) => a.seq - b.seq);
    this.cursor = 0;
    this.endSent = false;
    this.arrived.clear();
  }

  get done(): boolean {
    return this.cursor >= this.segments.length;
  }

  /** Accepts one GET's bytes; emits every segment that is next in output order. */
  async accept(msg: ReaderToMerger): Promise<void> {
    if (msg.iteration !== this.iteration) {
      throw new CompactorError('ERR_INTERNAL', `merger got bytes of iteration ${msg.iteration} during iteration ${this.iteration}`);
    }
    const all = new Uint8Array(msg.buffer);
    for (const p of msg.pieces) {
      this.arrived.set(p.seq, all.subarray(p.offset, p.offset + p.size));
      this.held += p.size;
    }
    await this.flush();
  }

  /**
   * Emits every segment that is next in output order, and ends the iteration after the last.
   * Called after each GET and once at the start (an iteration may have nothing to read).
   */
  flush(): Promise<void> {
    const next = this.flushing.then(() => this.flushInOrder());
    // A failed flush fails its caller; the chain itself stays usable for the cancel path.
    this.flushing = next.catch(() => {});
    return next;
  }

  private async flushInOrder(): Promise<void> {
    let lastYield = performance.now();
    while (this.cursor < this.segments.length) {
      const first = this.segments[this.cursor]!;
      if (!this.arrived.has(first.seq)) return;
      // One chunk per run of segments that have arrived, go to the same output and follow each
      // other in it: per-block messages cost more than the copying (hundreds of thousands of
      // small blocks in a run), and the uploader cuts parts from whatever chunk size it gets.
      let end = this.cursor;
      let size = 0;
      while (end < this.segments.length) {
        const seg = this.segments[end]!;
        if (!this.arrived.has(seg.seq) || destKey(seg.dest) !== destKey(first.dest)) break;
        if (seg.destOffset !== first.destOffset + size || (size > 0 && size + seg.size > MAX_CHUNK)) break;
        size += seg.size;
        end++;
      }
      // A copy of its own, so each GET buffer can be dropped once all its pieces are out, and
      // the chunk can move to the uploader's thread.
      const buffer = new ArrayBuffer(size);
      const view = new Uint8Array(buffer);
      let at = 0;
      for (let i = this.cursor; i < end; i++) {
        const seq = this.segments[i]!.seq;
        const bytes = this.arrived.get(seq)!;
        this.arrived.delete(seq);
        view.set(bytes, at);
        at += bytes.byteLength;
      }
      const last = this.segments[end - 1]!;
      this.cursor = end;
      await this.out.send({ type: 'chunk', iteration: this.iteration, dest: first.dest, destOffset: first.destOffset, buffer }, size, [buffer]);
      this.held -= size;
      this.onEmitted?.(size);
      await this.maybeClose(last);
      // Credit may let this loop run on microtasks alone for long: give timers (the heartbeat)
      // and incoming messages their turn.
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
    }
    if (this.endSent) return;
    // An output whose bytes were all durable before this attempt still needs its close.
    for (const spec of this.outputs.values()) {
      if (spec.closesIn === this.iteration && !this.closed.has(destKey(spec.dest))) await this.close(spec);
    }
    this.endSent = true;
    await this.out.send({ type: 'iteration.end', iteration: this.iteration }, 0);
  }

  private async maybeClose(seg: Segment): Promise<void> {
    const spec = this.outputs.get(destKey(seg.dest));
    if (!spec) throw new CompactorError('ERR_INTERNAL', `segment ${seg.seq} goes to unknown output ${destKey(seg.dest)}`);
    if (seg.destOffset + seg.size === spec.dataSize) await this.close(spec);
  }

  private async close(spec: OutputSpec): Promise<void> {
    this.closed.add(destKey(spec.dest));
    const trailerBytes = buildIndexAndFooter(regroupIndex(spec.entries), spec.dataSize);
    const trailer = new ArrayBuffer(trailerBytes.byteLength);
    new Uint8Array(trailer).set(trailerBytes);
    await this.out.send({ type: 'close', iteration: this.iteration, dest: spec.dest, trailer }, 0, [trailer]);
  }

  releaseHeld(): void {
    if (this.held > 0) this.budget.release(this.held);
    this.held = 0;
    this.arrived.clear();
  }
}
