/**
 * Merger actor: puts the bytes the reader fetched (in whatever order GETs finished) into output
 * order, hands runs of segments to the uploader as views of the GET buffers, and closes an output after its
 * last segment with the regrouped index and the footer. Data blocks are copied as they are,
 * never re-encoded, but every block's and record's header is checked against the source entry
 * on the way (magics, lengths, counts, stream, offsets): a damaged source fails, it never spreads.
 */
import { buildIndexAndFooter, checkDataBlocks, regroupIndex } from '../format/index.js';
import { destKey, type MergerToUploader, type OutputSpec, type ReaderToMerger, type Segment } from '../messages/pipeline.js';
import { CompactorError } from '../errors.js';
import { deferred } from '../util/async.js';
import type { BudgetView, Outbox } from './io.js';

/** Longest stretch of work between two turns of the event loop. */
const YIELD_EVERY_MS = 20;

export class Merger {
  private readonly outputs: Map<string, OutputSpec>;
  /** Bytes received from the reader and not yet handed on: released here on failure. */
  private held = 0;
  private segments: Segment[] = [];
  private bySeq = new Map<number, Segment>();
  private iteration = -1;
  private cursor = 0;
  /** Bytes of the segment at `cursor` already emitted (a chunk ended at a part boundary inside it). */
  private skip = 0;
  private endSent = false;
  /** Settles once the current iteration's end has been sent (at once before the first). */
  private ended = deferred<void>();
  private readonly closed = new Set<string>();
  /** Flushes run one at a time, so segments, closes and the end go out in order. */
  private flushing: Promise<void> = Promise.resolve();
  private readonly arrived = new Map<number, Uint8Array>();
  /** GETs that read through gaps: their gap bytes are given back with their last piece. */
  private readonly gapOf = new Map<number, { pieces: number; gap: number }>();
  private gapHeld = 0;

  constructor(
    outputs: readonly OutputSpec[],
    private readonly budget: BudgetView,
    private readonly out: Outbox<MergerToUploader>,
    /** Chunks never cross a multiple of this in their output: parts are cut there. */
    private readonly partSize: number,
    /** Called with the bytes of each segment handed on: the reader's credit comes back. */
    private readonly onEmitted?: (bytes: number) => void,
  ) {
    this.outputs = new Map(outputs.map((o) => [destKey(o.dest), o]));
  }

  /** Waits until the current iteration is ended: the next one may start only then. */
  idle(): Promise<void> {
    return this.iteration < 0 ? Promise.resolve() : this.ended.promise;
  }

  startIteration(iteration: number, segments: readonly Segment[]): void {
    this.ended = deferred<void>();
    this.iteration = iteration;
    this.segments = [...segments].sort((a, b) => a.seq - b.seq);
    this.bySeq = new Map(this.segments.map((s) => [s.seq, s]));
    this.cursor = 0;
    this.skip = 0;
    this.endSent = false;
    this.arrived.clear();
  }

  /** Accepts one GET's bytes; emits every segment that is next in output order. */
  async accept(msg: ReaderToMerger): Promise<void> {
    if (msg.iteration !== this.iteration) {
      throw new CompactorError('ERR_INTERNAL', `merger got bytes of iteration ${msg.iteration} during iteration ${this.iteration}`);
    }
    const all = msg.bytes;
    if (msg.gap > 0) {
      const g = { pieces: msg.pieces.length, gap: msg.gap };
      for (const p of msg.pieces) this.gapOf.set(p.seq, g);
      this.gapHeld += msg.gap;
    }
    for (const p of msg.pieces) {
      this.held += p.size;
      const bytes = all.subarray(p.offset, p.offset + p.size);
      // Damage is never copied: a block that disagrees with its source entry fails here, naming
      // the source object and the byte, before any of it reaches an output.
      const seg = this.bySeq.get(p.seq);
      if (seg?.entry) checkDataBlocks(bytes, seg.entry, seg.key, seg.srcPos);
      this.arrived.set(p.seq, bytes);
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
    const { partSize } = this;
    while (this.cursor < this.segments.length) {
      const first = this.segments[this.cursor]!;
      if (!this.arrived.has(first.seq)) return;
      // One chunk per run of arrived segments that follow each other in the same output, cut at
      // the output's part boundaries: per-block messages cost more than the copying, and a
      // chunk that is exactly one part goes up as that part without another copy.
      const start = first.destOffset + this.skip;
      const room = partSize - (start % partSize);
      const pieces: Uint8Array[] = [];
      let size = 0;
      let end = this.cursor;
      let skip = this.skip;
      while (end < this.segments.length && size < room) {
        const seg = this.segments[end]!;
        const bytes = this.arrived.get(seg.seq);
        if (!bytes || destKey(seg.dest) !== destKey(first.dest) || seg.destOffset + skip !== start + size) break;
        const take = Math.min(seg.size - skip, room - size);
        pieces.push(bytes.subarray(skip, skip + take));
        size += take;
        if (skip + take < seg.size) {
          skip += take;
          break;
        }
        end++;
        skip = 0;
      }
      // Views into the GET buffers, not a copy: the uploader shares this thread and copies them
      // once, into its part buffer.
      let gaps = 0;
      for (let i = this.cursor; i < end; i++) {
        const seq = this.segments[i]!.seq;
        this.arrived.delete(seq);
        const g = this.gapOf.get(seq);
        if (g && --g.pieces === 0) gaps += g.gap;
        this.gapOf.delete(seq);
      }
      const finished = end > this.cursor ? this.segments[end - 1] : undefined;
      this.cursor = end;
      this.skip = skip;
      await this.out.send({ type: 'chunk', iteration: this.iteration, dest: first.dest, destOffset: start, pieces, size }, size);
      this.held -= size;
      this.onEmitted?.(size);
      if (gaps > 0) {
        this.gapHeld -= gaps;
        this.budget.release(gaps);
        this.onEmitted?.(gaps);
      }
      if (finished) await this.maybeClose(finished);
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
    this.ended.resolve();
  }

  private async maybeClose(seg: Segment): Promise<void> {
    const spec = this.outputs.get(destKey(seg.dest));
    if (!spec) throw new CompactorError('ERR_INTERNAL', `segment ${seg.seq} goes to unknown output ${destKey(seg.dest)}`);
    if (seg.destOffset + seg.size === spec.dataSize) await this.close(spec);
  }

  private async close(spec: OutputSpec): Promise<void> {
    this.closed.add(destKey(spec.dest));
    const trailer = buildIndexAndFooter(regroupIndex(spec.entries), spec.dataSize);
    await this.out.send({ type: 'close', iteration: this.iteration, dest: spec.dest, trailer }, 0);
  }

  releaseHeld(): void {
    if (this.held > 0) this.budget.release(this.held);
    if (this.gapHeld > 0) this.budget.release(this.gapHeld);
    this.held = 0;
    this.gapHeld = 0;
    this.gapOf.clear();
    this.arrived.clear();
  }
}
