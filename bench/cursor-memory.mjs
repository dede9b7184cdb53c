// What a paused open read costs the process (`CURSOR_MEMORY`, src/storage/range-cursor.ts), two ways:
//
//   alone   144 cursors opened one after another on objects of the server, each read to a varied
//           point of a range that ends before its object does (a run's cursors never reach the
//           index) and left paused; memory after two GCs, before and after, over 144. Each
//           repetition in a fresh process: memory a process keeps in its malloc arenas after a
//           repetition would hide the next one's.
//   in a run  256 MiB of 144 SSOs compacted under 200 MiB without open reads, and with all 144
//           open under 200 MiB plus their CURSOR_MEMORY (the same data budget, so the same
//           iterations): the difference of the runs' RSS growth over 144, alternating.
//
//   node bench/cursor-memory.mjs [--server moto|fauxqs] [--reps N]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { args, benchDir, dropBucket, ingestFresh, log, machine, MiB, round, runJsonChild, writeResult } from './lib.mjs';
import { S3Storage } from '../dist/index.js';
import { CURSOR_MEMORY } from '../dist/storage/range-cursor.js';
import { createBucket, demoCredentials, demoRegion, startS3 } from '../dist/demo/s3-server.js';

const CURSORS = 144;
const OBJECT_BYTES = 4 << 20;
const KiB = 1024;
const a = args();

if (a.child) {
  const storage = new S3Storage({ bucket: a.bucket, namespace: 'DEFAULT', endpoint: a.child, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
  const settle = async () => {
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 200));
      globalThis.gc();
    }
    return process.memoryUsage();
  };
  const openAndRead = async (i) => {
    const c = storage.openRange(`o${i}`, 0, OBJECT_BYTES - 1);
    const len = 200_000 + ((i * 7919) % 200_000);
    await c.read(0, len, { byteLength: len, set() {} });
    return c;
  };
  // The read path warm first: its code and the agent are no cursor's cost.
  for (let i = CURSORS; i < CURSORS + 4; i++) (await openAndRead(i)).close();
  const base = await settle();
  const cursors = [];
  while (cursors.length < CURSORS) cursors.push(await openAndRead(cursors.length));
  const end = await settle();
  const each = (k) => round((end[k] - base[k]) / CURSORS / KiB, 0);
  console.log(JSON.stringify({ rssKiB: each('rss'), arrayBuffersKiB: each('arrayBuffers'), heapUsedKiB: each('heapUsed') }));
  for (const c of cursors) c.close();
  storage.close();
  process.exit(0);
}

const reps = Number(a.reps ?? 3);
const server = await startS3(a.server ?? 'auto');
const storageOf = (bucket) => new S3Storage({ bucket, namespace: 'DEFAULT', endpoint: server.url, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
const machineBefore = machine();
const started = new Date();
const dir = mkdtempSync(path.join(tmpdir(), 's3sc-bench-cursor-'));
const alone = [];
const inRun = [];
try {
  const bucket = await createBucket(server.url, 'cursor-mem');
  const storage = storageOf(bucket);
  const body = new Uint8Array(OBJECT_BYTES).fill(7);
  for (let i = 0; i < CURSORS + 4; i++) await storage.putObject(`o${i}`, body);
  storage.close();
  for (let rep = 0; rep < reps; rep++) {
    const out = await runJsonChild(['--expose-gc', fileURLToPath(import.meta.url), '--child', server.url, '--bucket', bucket], 'cursor-memory');
    alone.push(out);
    log(`alone (${rep + 1}/${reps}): each of ${CURSORS} paused cursors RSS ${out.rssKiB} KiB, ArrayBuffers ${out.arrayBuffersKiB} KiB, heap ${out.heapUsedKiB} KiB`);
  }
  await dropBucket(server.url, bucket);

  const limit = 200 * MiB;
  const runs = { closed: { maxOpenReads: 0, memoryLimit: limit }, open: { maxOpenReads: CURSORS, memoryLimit: limit + CURSORS * CURSOR_MEMORY } };
  for (let rep = 0; rep < reps; rep++) {
    const growth = {};
    for (const [name, compactorOptions] of Object.entries(runs)) {
      const dbPath = path.join(dir, `${name}-${rep}.db`);
      const traffic = { streams: 400, objects: CURSORS, totalBytes: 256 * MiB, zipf: 1, seed: 7 };
      const { bucket } = await ingestFresh(server.url, { bucket: `cursor-run-${name}`, dbPath, traffic, partSize: 16 * MiB });
      const cfg = { approach: 'compactor', endpoint: server.url, bucket, dbPath, nodeId: 1, partSize: 16 * MiB, memoryLimit: limit, compactorOptions };
      const out = await runJsonChild([path.join(benchDir, 'throughput-child.mjs'), JSON.stringify(cfg)], `compactor (${name})`);
      growth[name] = out.rssGrowthMiB;
      await dropBucket(server.url, bucket);
    }
    const each = round(((growth.open - growth.closed) * MiB) / CURSORS / KiB, 0);
    inRun.push({ rssGrowthMiB: { closed: round(growth.closed, 1), open: round(growth.open, 1) }, rssKiB: each });
    log(`in a run (${rep + 1}/${reps}): RSS growth ${growth.closed.toFixed(1)} MiB without open reads, ${growth.open.toFixed(1)} with ${CURSORS}: ${each} KiB each`);
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
const worst = Math.max(...inRun.map((r) => r.rssKiB));
writeResult('cursor-memory', {
  name: 'cursor-memory',
  machine: machineBefore,
  node: process.version,
  serverKind: server.kind,
  date: started.toISOString(),
  parameters: { cursors: CURSORS, objectBytes: OBJECT_BYTES, reps, run: '256 MiB of 144 SSOs, 400 streams, under 200 MiB' },
  counted: { cursorMemoryKiB: CURSOR_MEMORY / KiB },
  results: { alone, inRun },
  targets: { inRun: { target: `what an open read adds to a run's RSS <= CURSOR_MEMORY (${CURSOR_MEMORY / KiB} KiB)`, value: worst, pass: worst <= CURSOR_MEMORY / KiB } },
});
log(`cursor memory: alone ${alone.map((r) => r.rssKiB).join(', ')} KiB of RSS a cursor, in a run ${inRun.map((r) => r.rssKiB).join(', ')}; counted as ${CURSOR_MEMORY / KiB} KiB`);
