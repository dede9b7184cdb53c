/**
 * Merger actor: the bytes of each GET land straight at their final position in their output's
 * part buffers as they come off the socket (`sink`), and once the GET is whole (`accept`) its
 * pieces are checked where they landed and counted, and every part they complete goes to the
 * uploader at once, in whatever order GETs finish. No GET has a buffer of its own: a byte is
 * copied once, into its part (placing bytes in output order instead kept every GET buffer alive
 * until its last piece came due, near the end of the iteration, beside the parts that already
 * held copies of its first pieces: twice the budget in memory). Data blocks are copied as they
 * are, never re-encoded, but every block's and record's header is checked against the source
 * entry before its part is handed on (magics, lengths, counts, stream, offsets): a damaged
 * source fails, it never spreads.
 */
import { buildIndexAndFooter, checkDataBlocks, regroupIndex } from '../format/index.js';
import { destKey, type Dest, type DurableUpload, type MergerToUploader, type OutputSpec, type ReaderToMerger, type ReadPiece, type Segment } from '../messages/pipeline.js';
import type { RangeSink } from '../storage/types.js';
import { CompactorError } from '../errors.js';
import { deferred } from '../util/async.js';
import { allocFreeable } from '../util/freeable.js';
import type { BudgetView, Outbox } from './io.js';
import type { PlanIndex } from './segments.js';

/** What the merger hands the uploader: a whole part, or an output's close. */
type Handed = Extract<MergerToUploader, { dataBytes: number }>;

/** One output being assembled: the parts not yet handed on, and how many of its data bytes exist. */
interface Assembly {
  spec: OutputSpec;
  /** Data bytes that exist: durable before this attempt, or placed by it. */
  have: number;
  /** Parts being filled, by part number: `need` data bytes still missing. */
  parts: Map<number, { buf: Uint8Array; need: number }>;
  /** Index and footer, built once, when the last part is first touched. */
  trailer: Uint8Array | undefined;
  closed: boolean;
}

export class Merger {
  private readonly outputs = new Map<string, Assembly>();
  /** Bytes placed in part buffers and not yet handed on: released here on failure. */
  private held = 0;
  /** The iteration's segments, by `seq` (their index), and which of them are counted. */
  private segments: readonly Segment[] = [];
  private counted = new Uint8Array(0);
  private iteration = -1;
  /** Segments of the current iteration not yet counted. */
  private left = 0;
  private endSent = false;
  /** Settles once the current iteration's end has been sent (at once before the first). */
  private ended = deferred<void>();

  constructor(
    outputs: readonly OutputSpec[],
    /** Source entries to check segments against, and the outputs' indexes (segments.ts). */
    private readonly plan: PlanIndex,
    /** The SSO's durable parts from an earlier attempt: those bytes exist already. */
    resume: DurableUpload | undefined,
    private readonly budget: BudgetView,
    private readonly out: Outbox<MergerToUploader>,
    /** Parts are cut at multiples of this in every output; the last one carries the trailer. */
    private readonly partSize: number,
  ) {
    for (const spec of outputs) {
      const have = spec.dest.kind === 'sso' ? (resume?.durableBytes ?? 0) : 0;
      this.outputs.set(destKey(spec.dest), { spec, have, parts: new Map(), trailer: undefined, closed: false });
    }
  }

  /** Waits until the current iteration is ended: the next one may start only then. */
  idle(): Promise<void> {
    return this.iteration < 0 ? Promise.resolve() : this.ended.promise;
  }

  startIteration(iteration: number, segments: readonly Segment[]): void {
    this.ended = deferred<void>();
    this.iteration = iteration;
    if (segments.some((s, i) => s.seq !== i)) throw new CompactorError('ERR_INTERNAL', `iteration ${iteration}: segments out of seq order`);
    this.segments = segments;
    this.counted = new Uint8Array(segments.length);
    this.left = segments.length;
    this.endSent = false;
  }

  /**
   * Where a GET's bytes land: each piece's at its place in its output's parts (allocated on first
   * touch), bytes between pieces nowhere. The GET may belong to a later iteration than the
   * current one (the reader runs ahead as the budget allows): its bytes wait in their parts.
   */
  sink(pieces: readonly ReadPiece[], size: number): RangeSink {
    const sorted = [...pieces].sort((x, y) => x.offset - y.offset);
    let first = 0;
    let lastAt = 0;
    return {
      byteLength: size,
      set: (chunk, at) => {
        // Chunks come in order; a resumed body starts again at or before where the cut one was.
        if (at < lastAt) first = 0;
        lastAt = at;
        const end = at + chunk.byteLength;
        while (first < sorted.length && sorted[first]!.offset + sorted[first]!.size <= at) first++;
        for (let i = first; i < sorted.length && sorted[i]!.offset < end; i++) {
          const p = sorted[i]!;
          const a = this.assembly(p.dest);
          const from = Math.max(at, p.offset);
          const to = Math.min(end, p.offset + p.size);
          // One view of the chunk per part the piece's bytes in it fall into.
          this.eachPart(p.destOffset + (from - p.offset), to - from, (partNumber, inPart, done, n) => {
            this.part(a, partNumber, true).buf.set(chunk.subarray(from - at + done, from - at + done + n), inPart);
          });
        }
      },
    };
  }

  /** One GET is whole: checks its pieces where they landed, counts them, hands on every part they complete; ends the iteration after its last segment. */
  async accept(msg: ReaderToMerger): Promise<void> {
    if (msg.iteration !== this.iteration) {
      throw new CompactorError('ERR_INTERNAL', `merger got bytes of iteration ${msg.iteration} during iteration ${this.iteration}`);
    }
    // The GET's budget is this actor's from here; bytes read through between pieces are
    // nobody's, so theirs comes back at once.
    this.held += msg.size - msg.gap;
    if (msg.gap > 0) this.budget.release(msg.gap);
    // Damage is never copied on: a block that disagrees with its source entry fails here, naming
    // the source object and the byte, before any part holding the GET's bytes is handed on.
    for (const p of msg.pieces) {
      const seg = this.segments[p.seq];
      if (!seg || seg.size !== p.size || this.counted[p.seq]) throw new CompactorError('ERR_INTERNAL', `merger got a piece (seq ${p.seq}, ${p.size} bytes) its iteration does not have`);
      if (seg.block !== undefined) checkDataBlocks(this.gather(seg), this.plan.sourceEntry(seg.block), seg.key, seg.srcPos);
    }
    // Counting is synchronous (tens of thousands of segments a run); what it completes goes out after.
    const ready: Handed[] = [];
    for (const p of msg.pieces) {
      this.counted[p.seq] = 1;
      this.left--;
      this.count(this.segments[p.seq]!, ready);
    }
    for (const m of ready) await this.handOn(m);
    await this.flush();
  }

  /** Ends the iteration once every segment is placed. Called after each GET and once at the start (an iteration may have nothing to read). */
  async flush(): Promise<void> {
    if (this.endSent || this.left > 0) return;
    this.endSent = true;
    const ready: Handed[] = [];
    for (const a of this.outputs.values()) {
      if (a.closed || a.spec.closesIn !== this.iteration) continue;
      // Every byte of an output that closes in this iteration exists by now (some perhaps durable
      // before this attempt, so no placement closed it).
      if (a.have !== a.spec.dataSize) {
        throw new CompactorError('ERR_INTERNAL', `${a.spec.key}: iteration ${this.iteration} ended with ${a.have} of its ${a.spec.dataSize} data bytes`);
      }
      this.close(a, ready);
    }
    for (const m of ready) await this.handOn(m);
    await this.out.send({ type: 'iteration.end', iteration: this.iteration }, 0);
    this.ended.resolve();
  }

  private assembly(dest: Dest): Assembly {
    const a = this.outputs.get(destKey(dest));
    if (!a) throw new CompactorError('ERR_INTERNAL', `a segment goes to unknown output ${destKey(dest)}`);
    return a;
  }

  /** Part `partNumber` of `a`, allocated (trailer included, for the last one) on first touch. */
  private part(a: Assembly, partNumber: number, create: boolean): { buf: Uint8Array; need: number } {
    let part = a.parts.get(partNumber);
    if (part) return part;
    if (!create) throw new CompactorError('ERR_INTERNAL', `${a.spec.key}: part ${partNumber} has no buffer`);
    const { partSize } = this;
    const { dataSize } = a.spec;
    const base = (partNumber - 1) * partSize;
    // The last part (or the only one: a PutObject) carries the trailer; it may hold no data at
    // all when the data ends at a part boundary, and is then built at the close.
    const last = base + partSize > dataSize;
    const data = last ? dataSize - base : partSize;
    a.trailer ??= last ? this.trailerOf(a.spec) : undefined;
    const buf = allocFreeable(data + (last ? a.trailer!.byteLength : 0));
    if (last) buf.set(a.trailer!, data);
    a.parts.set(partNumber, (part = { buf, need: data }));
    return part;
  }

  /**
   * Walks data bytes [offset, offset + size) of an output part by part: `fn` gets the part, where
   * in it the run starts, how many bytes of the range came before, and how many fall in it.
   */
  private eachPart(offset: number, size: number, fn: (partNumber: number, inPart: number, done: number, n: number) => void): void {
    const { partSize } = this;
    for (let done = 0; done < size; ) {
      const at = offset + done;
      const inPart = at % partSize;
      const n = Math.min(size - done, partSize - inPart);
      fn(Math.floor(at / partSize) + 1, inPart, done, n);
      done += n;
    }
  }

  /** A segment's bytes where they landed: a view of one part, or a copy of the two it straddles. */
  private gather(seg: Segment): Uint8Array {
    const a = this.assembly(seg.dest);
    const inPart = seg.destOffset % this.partSize;
    if (inPart + seg.size <= this.partSize) {
      return this.part(a, Math.floor(seg.destOffset / this.partSize) + 1, false).buf.subarray(inPart, inPart + seg.size);
    }
    const out = new Uint8Array(seg.size);
    this.eachPart(seg.destOffset, seg.size, (partNumber, at, done, n) => {
      out.set(this.part(a, partNumber, false).buf.subarray(at, at + n), done);
    });
    return out;
  }

  /** Counts a checked segment in its parts; each part it completes, and the output once all of it exists, is `ready` to hand on. */
  private count(seg: Segment, ready: Handed[]): void {
    const a = this.assembly(seg.dest);
    const { partSize } = this;
    this.eachPart(seg.destOffset, seg.size, (partNumber, inPart, _done, n) => {
      const part = this.part(a, partNumber, false);
      if (n > part.need) throw new CompactorError('ERR_INTERNAL', `${a.spec.key}: part ${partNumber} got ${n} bytes at ${(partNumber - 1) * partSize + inPart} with ${part.need} missing`);
      part.need -= n;
      a.have += n;
      if (part.need === 0 && partNumber * partSize <= a.spec.dataSize) {
        a.parts.delete(partNumber);
        ready.push({ type: 'part', iteration: this.iteration, dest: seg.dest, partNumber, body: part.buf, dataBytes: partSize });
      }
    });
    if (a.have === a.spec.dataSize && !a.closed) this.close(a, ready);
  }

  /** The last part (or the whole object), `ready` once every data byte of the output exists. */
  private close(a: Assembly, ready: Handed[]): void {
    a.closed = true;
    const { partSize } = this;
    const partNumber = Math.floor(a.spec.dataSize / partSize) + 1;
    const base = (partNumber - 1) * partSize;
    let part = a.parts.get(partNumber);
    if (!part) {
      // No byte of the last part was placed by this attempt: it holds the trailer alone.
      if (a.spec.dataSize !== base) throw new CompactorError('ERR_INTERNAL', `${a.spec.key}: closing without the bytes of its last part`);
      part = { buf: this.trailerOf(a.spec), need: 0 };
    }
    if (a.parts.size !== 1 && !(a.parts.size === 0 && a.spec.dataSize === base)) {
      throw new CompactorError('ERR_INTERNAL', `${a.spec.key}: closing with ${a.parts.size} parts not whole`);
    }
    a.parts.clear();
    ready.push({ type: 'close', iteration: this.iteration, dest: a.spec.dest, partNumber, body: part.buf, dataBytes: a.spec.dataSize - base });
  }

  private async handOn(msg: Handed): Promise<void> {
    await this.out.send(msg, msg.dataBytes);
    this.held -= msg.dataBytes;
  }

  private trailerOf(spec: OutputSpec): Uint8Array {
    const index = regroupIndex(this.plan.outputEntries(spec.dest));
    const size = index.reduce((n, e) => n + e.size, 0);
    if (size !== spec.dataSize) throw new CompactorError('ERR_INTERNAL', `${spec.key}: its index covers ${size} of its ${spec.dataSize} data bytes`);
    return buildIndexAndFooter(index, spec.dataSize);
  }

  releaseHeld(): void {
    if (this.held > 0) this.budget.release(this.held);
    this.held = 0;
    for (const a of this.outputs.values()) a.parts.clear();
  }
}
