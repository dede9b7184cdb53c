/**
 * Merger actor: places the bytes of each GET, the moment it arrives, at their final position in
 * their output's part buffers, and hands every part to the uploader as soon as it is whole, in
 * whatever order GETs finish. The GET's buffer is garbage right after: a byte lives in one buffer
 * at a time (placing it in output order instead kept every GET buffer alive until its last piece
 * came due, near the end of the iteration, beside the parts already holding copies of its first
 * pieces: twice the budget in memory). Data blocks are copied as they are, never re-encoded, but
 * every block's and record's header is checked against the source entry first (magics, lengths,
 * counts, stream, offsets): a damaged source fails, it never spreads.
 */
import { buildIndexAndFooter, checkDataBlocks, regroupIndex } from '../format/index.js';
import { destKey, type DurableUpload, type MergerToUploader, type OutputSpec, type ReaderToMerger, type Segment } from '../messages/pipeline.js';
import { CompactorError } from '../errors.js';
import { deferred } from '../util/async.js';
import type { BudgetView, Outbox } from './io.js';

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
  private bySeq = new Map<number, Segment>();
  private iteration = -1;
  /** Segments of the current iteration not yet placed. */
  private left = 0;
  private endSent = false;
  /** Settles once the current iteration's end has been sent (at once before the first). */
  private ended = deferred<void>();

  constructor(
    outputs: readonly OutputSpec[],
    /** The SSO's durable parts from an earlier attempt: those bytes exist already. */
    resume: DurableUpload | undefined,
    private readonly budget: BudgetView,
    private readonly out: Outbox<MergerToUploader>,
    /** Parts are cut at multiples of this in every output; the last part carries the trailer. */
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
    this.bySeq = new Map(segments.map((s) => [s.seq, s]));
    this.left = segments.length;
    this.endSent = false;
  }

  /** Places one GET's bytes; hands on every part they complete; ends the iteration after its last segment. */
  async accept(msg: ReaderToMerger): Promise<void> {
    if (msg.iteration !== this.iteration) {
      throw new CompactorError('ERR_INTERNAL', `merger got bytes of iteration ${msg.iteration} during iteration ${this.iteration}`);
    }
    const all = msg.bytes;
    // The GET's budget is this actor's from here; bytes read through between pieces are
    // nobody's, so theirs comes back at once.
    this.held += all.byteLength - msg.gap;
    if (msg.gap > 0) this.budget.release(msg.gap);
    // Damage is never copied: a block that disagrees with its source entry fails here, naming
    // the source object and the byte, before any of the GET reaches an output.
    const segs = msg.pieces.map((p) => {
      const seg = this.bySeq.get(p.seq);
      if (!seg || seg.size !== p.size) throw new CompactorError('ERR_INTERNAL', `merger got a piece (seq ${p.seq}, ${p.size} bytes) its iteration does not have`);
      if (seg.entry) checkDataBlocks(all.subarray(p.offset, p.offset + p.size), seg.entry, seg.key, seg.srcPos);
      return seg;
    });
    for (let i = 0; i < segs.length; i++) {
      const p = msg.pieces[i]!;
      this.bySeq.delete(p.seq);
      this.left--;
      await this.place(segs[i]!, all.subarray(p.offset, p.offset + p.size));
    }
    await this.flush();
  }

  /** Ends the iteration once every segment is placed. Called after each GET and once at the start (an iteration may have nothing to read). */
  async flush(): Promise<void> {
    if (this.endSent || this.left > 0) return;
    this.endSent = true;
    for (const a of this.outputs.values()) {
      if (a.closed || a.spec.closesIn !== this.iteration) continue;
      // Every byte of an output that closes in this iteration exists by now (some perhaps durable
      // before this attempt, so no placement closed it).
      if (a.have !== a.spec.dataSize) {
        throw new CompactorError('ERR_INTERNAL', `${a.spec.key}: iteration ${this.iteration} ended with ${a.have} of its ${a.spec.dataSize} data bytes`);
      }
      await this.close(a);
    }
    await this.out.send({ type: 'iteration.end', iteration: this.iteration }, 0);
    this.ended.resolve();
  }

  private async place(seg: Segment, bytes: Uint8Array): Promise<void> {
    const a = this.outputs.get(destKey(seg.dest));
    if (!a) throw new CompactorError('ERR_INTERNAL', `segment ${seg.seq} goes to unknown output ${destKey(seg.dest)}`);
    const { partSize } = this;
    const { dataSize } = a.spec;
    let at = 0;
    while (at < bytes.byteLength) {
      const offset = seg.destOffset + at;
      const partNumber = Math.floor(offset / partSize) + 1;
      const base = (partNumber - 1) * partSize;
      let part = a.parts.get(partNumber);
      if (!part) {
        // The last part (or the only one: a PutObject) carries the trailer; it may hold no data
        // at all when the data ends at a part boundary, and is then built at the close.
        const last = base + partSize > dataSize;
        const data = last ? dataSize - base : partSize;
        a.trailer ??= last ? this.trailerOf(a.spec) : undefined;
        // Not zero-filled: every byte is written before the part is handed on, and a page never
        // written is never resident.
        const buf = allocPart(data + (last ? a.trailer!.byteLength : 0));
        if (last) buf.set(a.trailer!, data);
        a.parts.set(partNumber, (part = { buf, need: data }));
      }
      const n = Math.min(bytes.byteLength - at, base + partSize - offset);
      if (n > part.need) throw new CompactorError('ERR_INTERNAL', `${a.spec.key}: part ${partNumber} got ${n} bytes at ${offset} with ${part.need} missing`);
      part.buf.set(bytes.subarray(at, at + n), offset - base);
      part.need -= n;
      a.have += n;
      at += n;
      if (part.need === 0 && base + partSize <= dataSize) {
        a.parts.delete(partNumber);
        await this.handOn({ type: 'part', iteration: this.iteration, dest: seg.dest, partNumber, body: part.buf, dataBytes: partSize });
      }
    }
    if (a.have === dataSize && !a.closed) await this.close(a);
  }

  /** Hands on the last part (or the whole object) once every data byte of the output exists. */
  private async close(a: Assembly): Promise<void> {
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
    await this.handOn({ type: 'close', iteration: this.iteration, dest: a.spec.dest, partNumber, body: part.buf, dataBytes: a.spec.dataSize - base });
  }

  private async handOn(msg: Extract<MergerToUploader, { dataBytes: number }>): Promise<void> {
    await this.out.send(msg, msg.dataBytes);
    this.held -= msg.dataBytes;
  }

  private trailerOf(spec: OutputSpec): Uint8Array {
    return buildIndexAndFooter(regroupIndex(spec.entries), spec.dataSize);
  }

  releaseHeld(): void {
    if (this.held > 0) this.budget.release(this.held);
    this.held = 0;
    for (const a of this.outputs.values()) a.parts.clear();
  }
}

function allocPart(size: number): Uint8Array {
  // allocUnsafeSlow: its own ArrayBuffer, never a slice of Node's shared pool.
  const b = Buffer.allocUnsafeSlow(size);
  return new Uint8Array(b.buffer, b.byteOffset, size);
}
