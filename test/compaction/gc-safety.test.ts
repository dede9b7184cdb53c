/**
 * Issue #10, "gc deletes live data when given the wrong or an empty metadata file": garbage
 * collection deletes what metadata does not know, so it must first make sure the metadata is
 * this bucket's and namespace's, and refuse to delete a large share of the namespace unforced.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/compactor/gc.js';
import { GcRefusedError } from '../../src/errors.js';
import { SqliteMetadataStore } from '../../src/metadata/index.js';
import { createTestNode, type TestNode } from '../support/node.js';

let nodes: TestNode[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const n of nodes) await n.close();
  nodes = [];
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function nodeWithObjects(prefix: string, objects: number, size = 100): Promise<TestNode> {
  const n = await createTestNode(prefix, { streams: [1, 2] });
  nodes.push(n);
  for (let i = 0; i < objects; i++) await n.writeStreams({ 1: { n: 2, size: size + i }, 2: { n: 1, size: 50 } });
  return n;
}

async function keys(n: TestNode): Promise<string[]> {
  return (await n.storage.listObjects()).map((o) => o.key).sort();
}

function emptyStore(): SqliteMetadataStore {
  const dir = mkdtempSync(join(tmpdir(), 's3sc-gc-'));
  dirs.push(dir);
  return new SqliteMetadataStore({ path: join(dir, 'empty.db') });
}

describe('gc refuses to guess (issue #10)', () => {
  it('regression: an empty metadata store deletes nothing, dry run or not, forced or not', async () => {
    const n = await nodeWithObjects('gc-empty', 3);
    const before = await keys(n);
    const empty = emptyStore();
    try {
      for (const o of [{}, { dryRun: true }, { force: true }]) {
        const err = await collectGarbage(n.storage, empty, { safetyAgeMs: 0, ...o }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(GcRefusedError);
        expect(err).toMatchObject({ code: 'ERR_GC_METADATA_MISMATCH', retryable: false });
        expect((err as Error).message).toContain(n.storage.bucket);
      }
    } finally {
      await empty.close();
    }
    expect(await keys(n)).toEqual(before);
    await n.verify();
  });

  it("regression: another bucket's metadata (same ids, other sizes) deletes nothing", async () => {
    const a = await nodeWithObjects('gc-foreign-a', 5);
    const b = await nodeWithObjects('gc-foreign-b', 2, 300);
    const before = await keys(a);
    // b's metadata knows ids 1..2 (of other sizes than a's); a's ids 3..5 look unknown to it.
    const err = await collectGarbage(a.storage, b.metadata, { safetyAgeMs: 0 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_GC_METADATA_MISMATCH' });
    expect((err as Error).message).toMatch(/metadata says/);
    expect(await keys(a)).toEqual(before);
    await a.verify();
  });

  it('deleting more than 10% of the namespace needs force; the right metadata then removes exactly the unknown', async () => {
    const n = await nodeWithObjects('gc-share', 2);
    const live = await keys(n);
    const base = (await n.metadata.prepareObjectIds(1)) + 100;
    const orphans: string[] = [];
    for (let i = 0; i < 25; i++) {
      const key = n.storage.keyOf(base + i);
      await n.storage.putObject(key, new Uint8Array([i]));
      orphans.push(key);
    }
    const err = await collectGarbage(n.storage, n.metadata, { safetyAgeMs: 0 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_GC_TOO_MANY' });
    expect((err as Error).message).toContain('--force');
    expect((await keys(n)).length).toBe(live.length + orphans.length);
    const report = await collectGarbage(n.storage, n.metadata, { safetyAgeMs: 0, force: true });
    expect(report.deletedObjects.sort()).toEqual(orphans.sort());
    expect(await keys(n)).toEqual(live);
    await n.verify();
  });
});
