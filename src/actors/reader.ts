/**
 * Reader actor: range GETs of an iteration's segments. Adjacent segments of one source object are
 * coalesced into one GET of at most `maxGetSize`; at most `readsInFlight` GETs run at once, and
 * each holds its bytes against the shared memory budget from before it is issued until the
 * uploader has uploaded them.
 */
import { CompactorError } from '../errors.js';
import type { ReaderReport, ReaderToMerger, ReadPiece, Segment, WholeObject } from '../messages/pipeline.js';
import type { ObjectStorage, RangeCursor, RangeSink } from '../storage/types.js';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { forEachConcurrent } from '../util/async.js';
import { free } from '../util/freeable.js';
import { coalesceRanges } from '../util/ranges.js';
import type { BudgetView, Landing, Outbox, Reporter } from './io.js';

export interface ReadRequest {
  key: string;
  start: number;
  end: number;
  pieces: ReadPiece[];
  /** Bytes of the range that no piece needs (read through to save a request). */
  gap: number;
  /** Smallest output position among its pieces: GETs are issued in output order. */
  firstSeq: number;
}

/**
 * Coalesces segments into GETs: same key, adjacent bytes, at most `maxGetSize` each, issued in
 * output order. Fewer, larger GETs win: against S3 (and moto) the cost per request outweighs the
 * earlier start smaller GETs would give the merger (measured: 1/8-object GETs ran at 0.6x).
 *
 * With `gapAllowance`, two runs of one object also join across a gap of at most `maxGap` bytes
 * (blocks of other iterations or outputs: read and dropped), smallest gaps first, until the
 * gaps add up to the allowance. An iteration's segments of one source are scattered (stream
 * objects come first in output order, so their blocks alternate with the SSO's in every
 * source): without this a source costs several GETs per iteration, and the per-request cost
 * (CPU here and on the server) was most of a run's time (measured: 384 data GETs of ~270 KiB
 * for 115 MiB under a 64 MiB limit).
 */
export function planReads(segments: readonly Segment[], maxGetSize: number, gapAllowance = 0, maxGap = DEFAULT_MAX_GAP): ReadRequest[] {
  const byKey = new Map<string, Segment[]>();
  for (const s of segments) {
    let list = byKey.get(s.key);
    if (!list) byKey.set(s.key, (list = []));
    list.push(s);
  }
  const runs: { key: string; group: Segment[]; start: number; end: number }[] = [];
  for (const [key, list] of byKey) {
    for (const group of coalesceRanges(list, (s) => s.srcPos, (s) => s.size, maxGetSize)) {
      const last = group[group.length - 1]!;
      runs.push({ key, group, start: group[0]!.srcPos, end: last.srcPos + last.size });
    }
  }
  if (gapAllowance > 0) joinAcrossGaps(runs, maxGetSize, gapAllowance, maxGap);
  const reads: ReadRequest[] = [];
  for (const r of runs) {
    if (r.group.length === 0) continue;
    const data = r.group.reduce((n, s) => n + s.size, 0);
    reads.push({
      key: r.key,
      start: r.start,
      end: r.end,
      pieces: r.group.map((s) => ({ seq: s.seq, offset: s.srcPos - r.start, size: s.size, dest: s.dest, destOffset: s.destOffset })),
      gap: r.end - r.start - data,
      firstSeq: r.group.reduce((m, s) => Math.min(m, s.seq), Infinity),
    });
  }
  return reads.sort((a, b) => a.firstSeq - b.firstSeq);
}

/** Longest stretch of copying from objects read whole between two turns of the event loop. */
const YIELD_EVERY_MS = 20;
/** Least time between two progress reports of bytes read (and one at the end of each iteration). */
const PROGRESS_EVERY_MS = 100;

/** Largest gap a GET reads through. */
const DEFAULT_MAX_GAP = 1024 * 1024;

/** Joins neighbouring runs of one key (in place, emptying the absorbed ones), smallest gap first. */
function joinAcrossGaps(runs: { key: string; group: Segment[]; start: number; end: number }[], maxGetSize: number, allowance: number, maxGap: number): void {
  const byKey = new Map<string, typeof runs>();
  for (const r of runs) {
    let list = byKey.get(r.key);
    if (!list) byKey.set(r.key, (list = []));
    list.push(r);
  }
  const gaps: { left: (typeof runs)[number]; right: (typeof runs)[number]; size: number }[] = [];
  for (const list of byKey.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      const size = list[i]!.start - list[i - 1]!.end;
      if (size <= maxGap) gaps.push({ left: list[i - 1]!, right: list[i]!, size });
    }
  }
  gaps.sort((a, b) => a.size - b.size);
  // A run absorbed into its left neighbour forwards to it (union-find over the chain).
  const into = new Map<object, (typeof runs)[number]>();
  const find = (r: (typeof runs)[number]) => {
    let x = r;
    while (into.has(x)) x = into.get(x)!;
    return x;
  };
  let left = allowance;
  for (const g of gaps) {
    if (g.size > left) continue;
    const a = find(g.left);
    const b = g.right;
    if (b.end - a.start > maxGetSize) continue;
    a.group.push(...b.group);
    a.end = b.end;
    b.group = [];
    into.set(b, a);
    left -= g.size;
  }
}

export class Reader {
  /** Budget bytes acquired and not yet handed to the merger: released here on failure. */
  private held = 0;
  /**
   * One GET per source kept open across iterations (storage/range-cursor.ts), at most
   * `maxOpenReads`; a source without one (or whose cursor failed) is read with plain GETs.
   */
  private readonly cursors = new Map<string, RangeCursor>();
  /** Bytes read and not yet reported, and when the last report went. */
  private unreported = 0;
  private reportedAt = 0;
  /**
   * Objects read whole at planning: the budget each still holds for bytes not yet read from it,
   * and the bytes the plan still needs from it (at 0 it is dropped: its bytes are in parts now).
   */
  private readonly whole = new Map<string, { bytes: Uint8Array; left: number; needed: number }>();

  constructor(
    private readonly storage: ObjectStorage,
    private readonly budget: BudgetView,
    /** Where GET bodies land (the merger's parts): the reader holds no bytes of its own. */
    private readonly landing: Landing,
    private readonly out: Outbox<ReaderToMerger>,
    private readonly reporter: Reporter<ReaderReport>,
    private readonly settings: { maxGetSize: number; readsInFlight: number; acquireTimeoutMs: number; maxOpenReads: number },
    whole: readonly WholeObject[] = [],
    /** Bytes the run copies from each object (all of its blocks in the plan). */
    needed: ReadonlyMap<string, number> = new Map(),
    /** End of the last byte the run reads from each object: where a cursor's GET ends. */
    private readonly lastEnd: ReadonlyMap<string, number> = new Map(),
  ) {
    for (const o of whole) this.whole.set(o.key, { bytes: o.bytes, left: o.bytes.byteLength, needed: needed.get(o.key) ?? 0 });
  }

  /** True while objects read whole at planning are being read from: they need no GET and no gap. */
  get readsWhole(): boolean {
    return this.whole.size > 0;
  }

  /**
   * `gapAllowance`: budget bytes this iteration may spend on gaps read through. The plan fits the
   * iteration's blocks (and the SSO tail before it) in the memory limit; every GET of an
   * iteration may have to be held at once before its parts are whole (a part holds bytes of
   * many sources), so gaps beyond the limit's headroom could leave a GET waiting for budget that
   * only its own data frees. (A GET's gap is given back when it completes, so this sum bounds
   * what is needed, not what is held.)
   */
  async runIteration(iteration: number, segments: readonly Segment[], signal: AbortSignal, gapAllowance = 0): Promise<void> {
    const reads = planReads(segments, this.settings.maxGetSize, gapAllowance);
    let turn = performance.now();
    await forEachConcurrent(
      reads,
      this.settings.readsInFlight,
      async (r, _i, lane) => {
        const size = r.end - r.start;
        const whole = this.whole.get(r.key);
        if (whole) {
          // Read at planning: the bytes are here and so is their budget, which moves to this read.
          // Reads of an object are disjoint (no gaps are read through), so they never take more.
          if (size > whole.left) throw new CompactorError('ERR_INTERNAL', `${r.key}: a read of ${size} bytes from an object read whole, with ${whole.left} left`);
          whole.left -= size;
          whole.needed -= size;
          this.held += size;
          this.landing.sink(r.pieces, size).set(whole.bytes.subarray(r.start, r.end), 0);
          // Its last needed bytes are in their parts: holding the object on would keep every byte
          // twice (the budget counts it once), and what no read takes (its index) frees now.
          if (whole.needed <= 0) this.dropWhole(r.key, whole);
          // No I/O here: the reader and the merger would copy a whole run on microtasks alone.
          // Timers (the heartbeat) and the supervisor's messages get their turn every so often.
          if (performance.now() - turn > YIELD_EVERY_MS) {
            await nextTurn();
            turn = performance.now();
          }
        } else {
          await this.budget.acquire(size, { signal: lane, timeoutMs: this.settings.acquireTimeoutMs });
          this.held += size;
          await this.get(r, this.landing.sink(r.pieces, size), lane);
        }
        this.progress(iteration, size);
        await this.out.send({ type: 'read', iteration, pieces: r.pieces, size, gap: r.gap }, size);
        this.held -= size;
      },
      signal,
    );
    this.progress(iteration, 0, true);
  }

  /**
   * Reports bytes read to the supervisor at most every PROGRESS_EVERY_MS, and at the end of an
   * iteration: a message a read cost the worker ~0.15 ms (posting, waking the host), and a run
   * under a tight limit reads ~2 000 times.
   */
  private progress(iteration: number, bytes: number, end = false): void {
    this.unreported += bytes;
    const now = performance.now();
    if (this.unreported === 0 || (!end && now - this.reportedAt < PROGRESS_EVERY_MS)) return;
    this.reporter.report({ type: 'progress', iteration, bytesRead: this.unreported });
    this.unreported = 0;
    this.reportedAt = now;
  }

  /**
   * One read's bytes: from the source's cursor when it has one that can serve it (opened here if
   * there is room for one more), else with a plain GET. Either follows a plain GET's failure
   * rules (range-cursor.ts); a cursor that failed is dropped, and the next read opens another.
   */
  private async get(r: ReadRequest, sink: RangeSink, signal: AbortSignal): Promise<void> {
    const cursor = this.cursorFor(r);
    if (!cursor) return this.storage.getRangeInto(r.key, r.start, r.end, sink, { signal });
    try {
      await cursor.read(r.start, r.end, sink, signal);
    } finally {
      if (cursor.closed || cursor.position >= (this.lastEnd.get(r.key) ?? 0)) this.closeCursor(cursor);
    }
  }

  private cursorFor(r: ReadRequest): RangeCursor | undefined {
    const open = this.storage.openRange;
    const end = this.lastEnd.get(r.key);
    if (!open || end === undefined || end < r.end || this.settings.maxOpenReads <= 0) return undefined;
    const cursor = this.cursors.get(r.key);
    if (cursor?.canRead(r.start, r.end)) return cursor;
    // In use by another read of this iteration: that one keeps it, this one is a plain GET.
    if (cursor?.reading) return undefined;
    // Past this read, or too far before it: a new GET from here serves this read and the next ones.
    if (cursor) this.closeCursor(cursor);
    if (this.cursors.size >= this.settings.maxOpenReads) return undefined;
    const opened = open.call(this.storage, r.key, r.start, end);
    this.cursors.set(r.key, opened);
    return opened;
  }

  private closeCursor(cursor: RangeCursor): void {
    cursor.close();
    if (this.cursors.get(cursor.key) === cursor) this.cursors.delete(cursor.key);
  }

  /** Drops the objects read whole and gives back the budget of what was not read from them (indexes, dead blocks). */
  releaseWhole(): void {
    for (const [key, w] of this.whole) this.dropWhole(key, w);
  }

  private dropWhole(key: string, w: { bytes: Uint8Array; left: number }): void {
    if (w.left > 0) this.budget.release(w.left);
    this.whole.delete(key);
    // Its memory goes back now, not at the next GC: its bytes are in their parts already.
    free(w.bytes);
  }

  /** Gives back every byte this reader holds. Safe to call more than once. */
  releaseHeld(): void {
    for (const c of this.cursors.values()) c.close();
    this.cursors.clear();
    if (this.held > 0) this.budget.release(this.held);
    this.held = 0;
    this.releaseWhole();
  }
}
