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
    while (this.cursor < this.segments.length) {
      const seg = this.segments[this.cursor]!;
      const bytes = this.arrived.get(seg.seq);
      if (!bytes) return;
      this.arrived.delete(seg.seq);
      this.cursor++;
      // A copy of its own, so the GET buffer can be dropped once all its pieces are out and the
      // segment's buffer can move to the uploader's thread.
      const buffer = new ArrayBuffer(bytes.byteLength);
      new Uint8Array(buffer).set(bytes);
      await this.out.send({ type: 'chunk', iteration: this.iteration, dest: seg.dest, destOffset: seg.destOffset, buffer }, bytes.byteLength, [buffer]);
      this.held -= bytes.byteLength;
      this.onEmitted?.(bytes.byteLength);
      await this.maybeClose(seg);
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
