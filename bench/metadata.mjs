// Benchmark f (metadata commits, issue #12): commit latency p50/p99 and commits per second of
// SQLite and PostgreSQL side by side in one run, one node and four nodes committing at once
// (each node its own connection, as separate ingest nodes would be). A commit is what an
// ingest node makes per WAL batch: one SSO of 50 stream ranges; every fifth a compaction of the
// previous four.
//
//   node bench/metadata.mjs [--quick]        (PG_URL, or a throwaway cluster from /usr/lib/postgresql)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { args, check, log, machine, percentile, rootDir, round, writeResult } from './lib.mjs';
import { PostgresMetadataStore, SqliteMetadataStore } from '../dist/index.js';

const a = args();
const quick = Boolean(a.quick);
const COMMITS = quick ? 100 : 400;
const STREAMS = 50;

const { tsImport } = await import('tsx/esm/api');
const { startPostgres } = await tsImport(path.join(rootDir, 'test/support/postgres.ts'), import.meta.url);
// fsync on, as SQLite's synchronous=FULL: both make every commit durable.
const pg = await startPostgres({ fsync: true });
if (typeof pg === 'string') {
  log(`metadata: no PostgreSQL (${pg}): only SQLite is measured`);
}
const dir = mkdtempSync(path.join(tmpdir(), 's3sc-bench-meta-'));
const started = new Date();
const machineBefore = machine();

async function pgDatabase(name) {
  const { default: pgLib } = await import('pg');
  const c = new pgLib.Client({ connectionString: pg.url });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(pg.url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** `nodes` committers, each its own store (connection), `COMMITS` commits each, all at once. */
async function scenario(open, nodes) {
  const setup = await open();
  for (let s = 0; s < STREAMS * nodes; s++) await setup.createStream({ streamId: s, epoch: 0, startOffset: 0 });
  await setup.close();
  const latencies = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: nodes }, async (_, node) => {
      const store = await open();
      const ends = new Array(STREAMS).fill(0);
      let batch = [];
      for (let i = 0; i < COMMITS; i++) {
        const t = performance.now();
        if (batch.length === 4) {
          const id = await store.prepareObjectIds(1);
          const ranges = Array.from({ length: STREAMS }, (_, s) => ({ streamId: node * STREAMS + s, startOffset: ends[s] - 40, endOffset: ends[s] }));
          await store.commitStreamSetObject({ nodeId: node, objectId: id, objectSize: 4_000_000, streamRanges: ranges, streamObjects: [], compactedObjectIds: batch });
          batch = [id];
        } else {
          const id = await store.prepareObjectIds(1);
          const ranges = Array.from({ length: STREAMS }, (_, s) => ({ streamId: node * STREAMS + s, startOffset: ends[s], endOffset: (ends[s] += 10) }));
          await store.commitStreamSetObject({ nodeId: node, objectId: id, objectSize: 1_000_000, streamRanges: ranges, streamObjects: [], compactedObjectIds: [] });
          batch.push(id);
        }
        latencies.push(performance.now() - t);
      }
      await store.close();
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { commits: latencies.length, p50Ms: round(percentile(latencies, 50), 2), p99Ms: round(percentile(latencies, 99), 2), commitsPerS: round(latencies.length / seconds, 0) };
}

const results = {};
try {
  for (const nodes of [1, 4]) {
    results[`sqlite, ${nodes} node(s)`] = await scenario(async () => new SqliteMetadataStore({ path: path.join(dir, `s${nodes}.db`) }), nodes);
    if (typeof pg !== 'string') {
      const url = await pgDatabase(`bench_${nodes}_${process.pid}`);
      results[`postgresql, ${nodes} node(s)`] = await scenario(() => PostgresMetadataStore.open({ connectionString: url, poolSize: 2 }), nodes);
    }
  }
  for (const [k, r] of Object.entries(results)) log(`metadata: ${k}: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.commitsPerS} commits/s`);
  const pg4 = results['postgresql, 4 node(s)'];
  const targets = pg4 ? { 'postgresql, 4 nodes: p99 < 50 ms': check('< 50 ms', `${pg4.p99Ms} ms`, pg4.p99Ms < 50) } : {};
  writeResult('metadata', {
    date: started.toISOString(),
    node: process.version,
    machine: machineBefore,
    quick,
    parameters: { commitsPerNode: COMMITS, rangesPerCommit: STREAMS, postgres: typeof pg === 'string' ? `none: ${pg}` : pg.kind, sqliteSynchronous: 'FULL (fsync at every commit)', postgresFsync: pg.kind === 'local' ? 'on' : 'server setting' },
    results,
    targets,
  });
} finally {
  if (typeof pg !== 'string') await pg.stop();
  rmSync(dir, { recursive: true, force: true });
}
