import type { IndexEntry } from '../format/types.js';
import type { StreamRange } from '../metadata/types.js';

/**
 * Whether an object's index holds a range that metadata gives the object, or why not. Offsets
 * may be sparse (compacted topics), so the entries of the range need not touch each other: the
 * range holds when its entries start at its start and end at its end, as every writer (AutoMQ's
 * and ours) lays them out. Entries of other streams are ignored; their order does not matter.
 */
export function indexHoldsRange(entries: readonly IndexEntry[], range: StreamRange): string | null {
  let from = Infinity;
  let to = -Infinity;
  for (const e of entries) {
    if (e.streamId !== range.streamId || e.endOffset <= range.startOffset || e.startOffset >= range.endOffset) continue;
    from = Math.min(from, e.startOffset);
    to = Math.max(to, e.endOffset);
  }
  const want = `stream ${range.streamId} [${range.startOffset}, ${range.endOffset})`;
  if (from === Infinity) return `its index holds nothing of ${want} that metadata gives it`;
  if (from > range.startOffset) return `its index holds ${want} that metadata gives it only from offset ${from}`;
  if (to < range.endOffset) return `its index holds ${want} that metadata gives it only up to offset ${to}`;
  return null;
}

/**
 * `indexHoldsRange` for every range of an object, grouping its index by stream once (an SSO's
 * index and ranges both run into the thousands): the problems, one per range that does not hold.
 */
export function indexProblems(entries: readonly IndexEntry[], ranges: readonly StreamRange[]): string[] {
  if (ranges.length === 0) return [];
  const byStream = new Map<number, IndexEntry[]>();
  for (const e of entries) {
    let list = byStream.get(e.streamId);
    if (!list) byStream.set(e.streamId, (list = []));
    list.push(e);
  }
  const problems: string[] = [];
  for (const r of ranges) {
    const problem = indexHoldsRange(byStream.get(r.streamId) ?? [], r);
    if (problem !== null) problems.push(problem);
  }
  return problems;
}
