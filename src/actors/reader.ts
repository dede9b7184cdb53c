/**
 * Reader actor: range GETs of an iteration's segments. Adjacent segments of one source object are
 * coalesced into one GET of at most `maxGetSize`; at most `readsInFlight` GETs run at once, and
 * each holds its bytes against the shared memory budget from before it is issued until the
 * uploader has uploaded them.
 */
import type { ReaderReport, ReaderToMerger, ReadPiece, Segment } from '../messages/pipeline.js';
import type { ObjectStorage } from '../storage/types.js';
import { forEachConcurrent } from '../util/async.js';
import { coalesceRanges } from '../util/ranges.js';
import type { BudgetView, Outbox, Reporter } from './io.js';

export interface ReadRequest {
  key: string;
  start: number;
  end: number;
  pieces: ReadPiece[];
  /** Smallest output position among its pieces: GETs are issued in output order. */
  firstSeq: number;
}

/**
 * Coalesces segments into GETs: same key, adjacent bytes, at most `maxGetSize` each, issued in
 * output order. Fewer, larger GETs win: against S3 (and moto) the cost per request outweighs the
 * earlier start smaller GETs would give the merger (measured: 1/8-object GETs ran at 0.6x).
 */
export function planReads(segments: readonly Segment[], maxGetSize: number): ReadRequest[] {
  const byKey = new Map<string, Segment[]>();
  for (const s of segments) {
    let list = byKey.get(s.key);
    if (!list) byKey.set(s.key, (list = []));
    list.push(s);
  }
  const reads: ReadRequest[] = [];
  for (const [key, list] of byKey) {
    for (const group of coalesceRanges(list, (s) => s.srcPos, (s) => s.size, maxGetSize)) {
      const start = group[0]!.srcPos;
      const last = group[group.length - 1]!;
      reads.push({
        key,
        start,
        end: last.srcPos + last.size,
        pieces: group.map((s) => ({ seq: s.seq, offset: s.srcPos - start, size: s.size })),
        firstSeq: group.reduce((m, s) => Math.min(m, s.seq), Infinity),
      });
    }
  }
  return reads.sort((a, b) => a.firstSeq - b.firstSeq);
}

export class Reader {
  /** Budget bytes acquired and not yet handed to the merger: released here on failure. */
  private held = 0;

  constructor(
    private readonly storage: ObjectStorage,
    private readonly budget: BudgetView,
    private readonly out: Outbox<ReaderToMerger>,
    private readonly reporter: Reporter<ReaderReport>,
    private readonly settings: { maxGetSize: number; readsInFlight: number; acquireTimeoutMs: number },
  ) {}

  async runIteration(iteration: number, segments: readonly Segment[], signal: AbortSignal): Promise<void> {
    const reads = planReads(segments, this.settings.maxGetSize);
    await forEachConcurrent(
      reads,
      this.settings.readsInFlight,
      async (r, _i, lane) => {
        const size = r.end - r.start;
        await this.budget.acquire(size, { signal: lane, timeoutMs: this.settings.acquireTimeoutMs });
        this.held += size;
        const bytes = await this.storage.getRange(r.key, r.start, r.end, { signal: lane });
        this.reporter.report({ type: 'progress', iteration, bytesRead: size });
        await this.out.send({ type: 'read', iteration, bytes, pieces: r.pieces }, size);
        this.held -= size;
      },
      signal,
    );
  }

  /** Gives back every byte this reader holds. Safe to call more than once. */
  releaseHeld(): void {
    if (this.held > 0) this.budget.release(this.held);
    this.held = 0;
  }
}
