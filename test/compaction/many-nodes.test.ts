/**
 * Many nodes on one bucket and one PostgreSQL (issue #12): four processes, each an ingest node
 * writing its own streams and compacting its own SSOs, SIGKILLed at random and restarted, for
 * S3SC_CHAOS_SECONDS (default 30). Afterwards: every record any node acknowledged reads back,
 * every live object exists and `verify` passes, and garbage collection finds no object that
 * metadata does not know.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/compactor/gc.js';
import { parseObjectKey } from '../../src/format/index.js';
import { readStream } from '../../src/ingest/read-stream.js';
import { PostgresMetadataStore } from '../../src/metadata/index.js';
import type { S3Storage } from '../../src/storage/s3-storage.js';
import { ensureBuilt, runCli } from '../cli/helpers.js';
import { makeBucket, s3Endpoint } from '../support/env.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../support/pg.js';

const CHILD = fileURLToPath(new URL('./fixtures/ingest-node-child.mjs', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const NODES = [1, 2, 3, 4];
const SECONDS = Number(process.env.S3SC_CHAOS_SECONDS ?? 30);
const LEASE_TTL_MS = 1_000;
const streamsOf = (node: number) => [0, 1, 2, 3].map((i) => node * 100 + i);

interface Ack {
  streamId: number;
  baseOffset: number;
  count: number;
  hash: string;
}

describe.skipIf(!pgAvailable)('four ingest nodes on one bucket, killed and restarted at random', () => {
  let db: TestDatabase;
  let store: PostgresMetadataStore;
  let storage: S3Storage;

  beforeAll(async () => {
    await ensureBuilt();
    db = await createTestDatabase('chaos');
    store = await PostgresMetadataStore.open({ connectionString: db.url, graceMs: 2_000 });
    storage = await makeBucket('chaos');
    for (const n of NODES) for (const s of streamsOf(n)) await store.createStream({ streamId: s, epoch: 0, startOffset: 0 });
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    storage?.close();
    await db?.drop();
  });

  it(`${SECONDS} s of ingest and compaction with SIGKILLs: every acknowledged record reads back, verify passes, nothing unknown is left`, async () => {
    const acks: Ack[] = [];
    const counts = { kills: 0, compactions: 0, failedRuns: new Map<string, number>() };
    const running = new Map<number, ChildProcess>();
    const start = (node: number, seed: number) => {
      const cfg = { bucket: storage.bucket, endpoint: s3Endpoint(), pgUrl: db.url, nodeId: node, streams: streamsOf(node), seed, leaseTtlMs: LEASE_TTL_MS };
      const child = spawn(process.execPath, [CHILD, JSON.stringify(cfg)], {
        cwd: REPO,
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      createInterface({ input: child.stdout! }).on('line', (text) => {
        const l = JSON.parse(text) as { type: string; code?: string; compacted?: number } & Ack;
        if (l.type === 'ack') acks.push({ streamId: l.streamId, baseOffset: l.baseOffset, count: l.count, hash: l.hash });
        else if (l.type === 'compacted') counts.compactions++;
        else if (l.type === 'run.failed') counts.failedRuns.set(l.code!, (counts.failedRuns.get(l.code!) ?? 0) + 1);
      });
      running.set(node, child);
    };
    const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));

    let seed = 1;
    for (const n of NODES) start(n, seed++);
    const end = Date.now() + SECONDS * 1000;
    // Deterministic chaos: a kill every ~1.5 s, of the nodes in a fixed shuffled order.
    const order = [3, 1, 4, 2, 2, 4, 1, 3];
    for (let k = 0; Date.now() < end; k++) {
      await new Promise((r) => setTimeout(r, 1_000 + (k % 3) * 500));
      const node = order[k % order.length]!;
      const child = running.get(node)!;
      child.kill('SIGKILL');
      await exited(child);
      counts.kills++;
      start(node, seed++);
    }
    for (const c of running.values()) {
      c.kill('SIGKILL');
      await exited(c);
    }
    console.info(
      `[many-nodes] ${SECONDS} s: ${acks.length} records acknowledged, ${counts.compactions} compactions committed, ${counts.kills} kills, failed runs: ${JSON.stringify(Object.fromEntries(counts.failedRuns))}`,
    );
    expect(acks.length).toBeGreaterThan(50);
    expect(counts.compactions).toBeGreaterThan(0);
    for (const code of counts.failedRuns.keys()) expect(['ERR_METADATA_NODE_BUSY', 'ERR_METADATA_FENCED', 'ERR_METADATA_OBJECT_NOT_LIVE', 'ERR_ABORTED']).toContain(code);

    // Every acknowledged record reads back, byte for byte.
    for (const n of NODES) {
      for (const s of streamsOf(n)) {
        const back = new Map<number, string>();
        for await (const r of readStream({ storage, metadata: store, streamId: s })) back.set(r.baseOffset, createHash('sha1').update(r.payload).digest('base64'));
        for (const a of acks.filter((x) => x.streamId === s)) expect(back.get(a.baseOffset), `stream ${s} record at ${a.baseOffset}`).toBe(a.hash);
      }
    }
    const live = await store.listAllLiveObjects();
    for (const o of [...live.streamSetObjects, ...live.streamObjects]) expect(await storage.headObject(storage.keyOf(o.objectId)), `live object ${o.objectId}`).toBeDefined();
    const verify = await runCli(['--endpoint', s3Endpoint(), '--bucket', storage.bucket, '--metadata', db.url, 'verify'], { timeoutMs: 120_000 });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    await collectGarbage(storage, store, { safetyAgeMs: 0, force: true });
    for (const o of await storage.listObjects()) expect(await store.isObjectKnown(parseObjectKey(o.key)!.objectId), `${o.key} unknown to metadata`).toBe(true);
  }, 300_000);
});
