/**
 * Groups byte ranges of one object into reads: ranges that follow each other without a gap join
 * one group while it stays within `maxBytes` (a single larger range stands alone). Sorted by
 * position first; the input is not changed.
 */
export function coalesceRanges<T>(items: readonly T[], position: (t: T) => number, size: (t: T) => number, maxBytes: number): T[][] {
  const sorted = [...items].sort((a, b) => position(a) - position(b));
  const groups: T[][] = [];
  let group: T[] = [];
  let start = 0;
  let end = -1;
  for (const item of sorted) {
    const p = position(item);
    if (group.length > 0 && (p !== end || p + size(item) - start > maxBytes)) {
      groups.push(group);
      group = [];
    }
    if (group.length === 0) start = p;
    group.push(item);
    end = p + size(item);
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
