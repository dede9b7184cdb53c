import type { IndexEntry } from '../format/types.js';

/**
 * Parsed object indexes for the read path, least recently used out first, bounded by the index
 * entries held. Objects never change once written (ids are never reused), so an index read once
 * stays right: reading many streams of one object (verify, a consumer catching up) reads its
 * footer and index once instead of once per stream.
 */
export class IndexCache {
  private readonly map = new Map<string, IndexEntry[]>();
  private entries = 0;

  constructor(private readonly maxEntries = DEFAULT_MAX_ENTRIES) {}

  /** `key` names the object and its size (a different size is a different object). */
  get(key: string): IndexEntry[] | undefined {
    const hit = this.map.get(key);
    if (hit) {
      this.map.delete(key);
      this.map.set(key, hit);
    }
    return hit;
  }

  set(key: string, index: IndexEntry[]): void {
    if (index.length > this.maxEntries) return;
    const old = this.map.get(key);
    if (old) {
      this.entries -= old.length;
      this.map.delete(key);
    }
    this.map.set(key, index);
    this.entries += index.length;
    for (const [k, v] of this.map) {
      if (this.entries <= this.maxEntries) break;
      this.map.delete(k);
      this.entries -= v.length;
    }
  }

  get size(): number {
    return this.map.size;
  }
}

/** About 16 MiB of parsed entries. */
const DEFAULT_MAX_ENTRIES = 200_000;

const perStorage = new WeakMap<object, IndexCache>();

/** The cache shared by every read of one storage instance. */
export function indexCacheOf(storage: object): IndexCache {
  let c = perStorage.get(storage);
  if (!c) perStorage.set(storage, (c = new IndexCache()));
  return c;
}
