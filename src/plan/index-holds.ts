import type { IndexEntry } from '../format/types.js';
import type { StreamRange } from '../metadata/types.js';

/**
 * Whether an object's index holds a range that metadata gives the object, or why not. Offsets
 * may be sparse (compacted topics), so the entries of the range need not touch each other: the
 * range holds when its entries start at its start and end at its end, as every writer (AutoMQ's
 * and ours) lays them out. Entries of other streams are ignored; their order does not matter.
 */
export function indexHoldsRange(entries: readonly IndexEntry[], range: StreamRange): string | null {
  return indexProblems(entries, [range])[0] ?? null;
}

/**
 * `indexHoldsRange` for every range of an object in one pass over its index (an SSO's index and
 * ranges both run into the thousands, a planned run's into the millions): the problems, one per
 * range that does not hold. Nothing is allocated per entry or per range that holds.
 */
export function indexProblems(entries: readonly IndexEntry[], ranges: readonly StreamRange[]): string[] {
  const n = ranges.length;
  if (n === 0) return [];
  // The ranges of each stream, chained: metadata gives an SSO one range per stream, seldom more.
  const first = new Map<number, number>();
  const next = new Int32Array(n).fill(-1);
  for (let r = n - 1; r >= 0; r--) {
    const s = ranges[r]!.streamId;
    const f = first.get(s);
    if (f !== undefined) next[r] = f;
    first.set(s, r);
  }
  const from = new Float64Array(n).fill(Infinity);
  const to = new Float64Array(n).fill(-Infinity);
  for (const e of entries) {
    for (let r = first.get(e.streamId) ?? -1; r >= 0; r = next[r]!) {
      const g = ranges[r]!;
      if (e.endOffset <= g.startOffset || e.startOffset >= g.endOffset) continue;
      if (e.startOffset < from[r]!) from[r] = e.startOffset;
      if (e.endOffset > to[r]!) to[r] = e.endOffset;
    }
  }
  const problems: string[] = [];
  for (let r = 0; r < n; r++) {
    const g = ranges[r]!;
    if (from[r]! <= g.startOffset && to[r]! >= g.endOffset) continue;
    const want = `stream ${g.streamId} [${g.startOffset}, ${g.endOffset})`;
    if (from[r] === Infinity) problems.push(`its index holds nothing of ${want} that metadata gives it`);
    else if (from[r]! > g.startOffset) problems.push(`its index holds ${want} that metadata gives it only from offset ${from[r]}`);
    else problems.push(`its index holds ${want} that metadata gives it only up to offset ${to[r]}`);
  }
  return problems;
}
