import type { IndexEntry } from '../format/types.js';
import type { StreamRange } from '../metadata/types.js';

/**
 * Whether an object's index holds a range that metadata gives the object, or why not. Offsets
 * may be sparse (compacted topics), so the entries of the range need not touch each other: the
 * range holds when its entries start at its start and end at its end, as every writer (AutoMQ's
 * and ours) lays them out. `entries` must be sorted by (streamId, startOffset), as indexes are.
 */
export function indexHoldsRange(entries: readonly IndexEntry[], range: StreamRange): string | null {
  let first: IndexEntry | undefined;
  let last: IndexEntry | undefined;
  for (const e of entries) {
    if (e.streamId !== range.streamId || e.endOffset <= range.startOffset || e.startOffset >= range.endOffset) continue;
    first ??= e;
    last = e;
  }
  const want = `stream ${range.streamId} [${range.startOffset}, ${range.endOffset})`;
  if (!first || !last) return `its index holds nothing of ${want} that metadata gives it`;
  if (first.startOffset > range.startOffset) return `its index holds ${want} that metadata gives it only from offset ${first.startOffset}`;
  if (last.endOffset < range.endOffset) return `its index holds ${want} that metadata gives it only up to offset ${last.endOffset}`;
  return null;
}
