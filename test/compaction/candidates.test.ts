/**
 * The run's candidate listing on a synchronous store (SQLite): the host's thread must turn
 * between slices. All of a node's ranges at once (53 k for 144 SSOs of 400 streams) held the
 * host's event loop for 56-116 ms at the start of every run, unseen by the benchmark until its
 * event-loop histogram waited for its first tick.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listCandidates } from '../../src/compactor/candidates.js';
import { SqliteMetadataStore, type StreamRange } from '../../src/metadata/index.js';
import { tempDir } from '../metadata/helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function nodeWithSsos(count: number): Promise<SqliteMetadataStore> {
  const { dir, cleanup } = tempDir();
  const store = new SqliteMetadataStore({ path: join(dir, 'meta.db') });
  cleanups.push(async () => {
    await store.close();
    cleanup();
  });
  for (const streamId of [1, 2, 3]) await store.createStream({ streamId, epoch: 0, startOffset: 0 });
  for (let i = 0; i < count; i++) {
    const streamRanges: StreamRange[] = [1, 2, 3].map((streamId) => ({ streamId, startOffset: i * 10, endOffset: i * 10 + 10 }));
    const objectId = await store.prepareObjectIds(1);
    await store.commitStreamSetObject({ nodeId: 1, objectId, objectSize: 100, streamRanges, streamObjects: [], compactedObjectIds: [] });
  }
  return store;
}

describe('listCandidates', () => {
  it('loads the ranges a slice of SSOs at a time, the event loop turning between slices, and lists what one load lists', async () => {
    const store = await nodeWithSsos(20);
    // The real store, observed: at each slice, has a macrotask queued at the slice before run yet?
    const turned: boolean[] = [];
    let ran = true;
    const observed = Object.create(store) as SqliteMetadataStore;
    observed.listSsoRanges = async (ids) => {
      turned.push(ran);
      ran = false;
      setImmediate(() => (ran = true));
      return store.listSsoRanges(ids);
    };
    const keys = { keyOf: (id: number) => `o/${id}` };
    const { candidates } = await listCandidates(observed, keys, { nodeId: 1, maxObjectsPerRun: 500 });
    expect(turned.length).toBeGreaterThan(1);
    expect(turned.every(Boolean)).toBe(true);
    const whole = await store.listStreamSetObjects({ nodeId: 1, withRanges: true });
    const byId = (list: { objectId: number }[]) => [...list].sort((x, y) => x.objectId - y.objectId);
    expect(byId(candidates)).toEqual(byId(whole));
  });
});
