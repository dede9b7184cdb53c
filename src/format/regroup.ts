/**
 * Index regrouping: fewer, larger entries make a smaller index, but AutoMQ's readers fetch one
 * entry at a time, so an entry must stay under 1 MiB, and its delta, record count and size are
 * int32 on disk.
 */
import type { IndexEntry } from './types.js';
import { INT32_MAX, MAX_INDEX_ENTRY_SIZE } from './constants.js';
import { invalid } from './bytes.js';

export interface RegroupOptions {
  /** Merged entries stay strictly below this many bytes. Default 1 MiB. */
  maxEntrySize?: number;
}

/**
 * Merges runs of consecutive entries of one stream whose offsets are contiguous and whose
 * blocks are adjacent. An input entry already at or over the limit is kept alone, never split
 * (its blocks are opaque here). Input entries are not modified.
 */
export function regroupIndex(entries: Iterable<IndexEntry>, opts: RegroupOptions = {}): IndexEntry[] {
  const max = opts.maxEntrySize ?? MAX_INDEX_ENTRY_SIZE;
  if (!(typeof max === 'number' && max > 0)) invalid(`maxEntrySize ${String(max)} is not a positive number`);
  const out: IndexEntry[] = [];
  let cur: IndexEntry | undefined;
  for (const e of entries) {
    if (cur !== undefined && canMerge(cur, e, max)) {
      cur.endOffset = e.endOffset;
      cur.recordCount += e.recordCount;
      cur.size += e.size;
      continue;
    }
    if (cur !== undefined) out.push(cur);
    cur = { ...e };
  }
  if (cur !== undefined) out.push(cur);
  return out;
}

function canMerge(a: IndexEntry, b: IndexEntry, max: number): boolean {
  if (a.streamId !== b.streamId) return false;
  if (a.endOffset !== b.startOffset) return false;
  if (a.position + a.size !== b.position) return false;
  const size = a.size + b.size;
  return size < max && size <= INT32_MAX && b.endOffset - a.startOffset <= INT32_MAX && a.recordCount + b.recordCount <= INT32_MAX;
}
