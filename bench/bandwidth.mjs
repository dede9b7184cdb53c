// Benchmark f (the bandwidth limit, issue #9): the same data compacted with bandwidthLimit N for
// a few N, each on a fresh bucket, in one process run. The limit covers every byte a run moves
// (index reads, data GETs, parts); measured: the bytes the limiter charged (all threads) over
// the run's wall time, which must be within 10 % of N, beside the run without a limit.
//
//   node bench/bandwidth.mjs [--quick] [--server moto|fauxqs]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { args, check, log, machine, MiB, round, runInfo, writeResult } from './lib.mjs';
import { Compactor, S3Storage, SqliteMetadataStore } from '../dist/index.js';
import { createBucket, demoCredentials, demoRegion, startS3 } from '../dist/demo/s3-server.js';
import { ingestTraffic } from '../dist/demo/traffic.js';

const a = args();
const quick = Boolean(a.quick);
const params = { mib: quick ? 24 : 64, streams: 400, objects: quick ? 16 : 36, memoryLimitMiB: 64, limitsMiBps: [null, 20, 10, 5] };

const server = await startS3(a.server ?? 'auto');
const dir = mkdtempSync(path.join(tmpdir(), 's3sc-bench-bw-'));
const started = new Date();
const machineBefore = machine();
const results = {};
try {
  for (const limit of params.limitsMiBps) {
    const name = limit === null ? 'no limit' : `${limit} MiB/s`;
    const bucket = await createBucket(server.url, `bw-${limit ?? 'none'}`);
    const storage = new S3Storage({ bucket, namespace: 'DEFAULT', endpoint: server.url, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
    const metadata = new SqliteMetadataStore({ path: path.join(dir, `${limit ?? 'none'}.db`) });
    await ingestTraffic({ storage, metadata, nodeId: 1, traffic: { streams: params.streams, objects: params.objects, totalBytes: params.mib * MiB, zipf: 1, seed: 3 }, concurrency: 4, partSize: 16 * MiB });
    const compactor = new Compactor({ storage, metadata, nodeId: 1, memoryLimit: params.memoryLimitMiB * MiB, ...(limit !== null ? { bandwidthLimit: limit * MiB } : {}) });
    try {
      const t0 = performance.now();
      const r = await compactor.compactOnce();
      const wallS = (performance.now() - t0) / 1000;
      if (!r.committed) throw new Error('nothing committed');
      const moved = compactor.bandwidth?.bytes ?? r.bytesRead + r.bytesWritten;
      const mibps = moved / MiB / wallS;
      results[name] = { limitMiBps: limit, wallS: round(wallS, 2), movedMiB: round(moved / MiB, 1), measuredMiBps: round(mibps, 2), waitedS: round(compactor.bandwidth?.waitedSeconds ?? 0, 2) };
      log(`bandwidth ${name}: ${round(moved / MiB, 1)} MiB moved in ${wallS.toFixed(2)} s = ${mibps.toFixed(2)} MiB/s`);
    } finally {
      await compactor.close();
      await metadata.close();
      storage.close();
    }
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

const targets = {};
for (const [name, r] of Object.entries(results)) {
  if (r.limitMiBps === null) continue;
  const ratio = r.measuredMiBps / r.limitMiBps;
  targets[name] = check('within ±10 % of the limit', round(ratio, 3), Math.abs(ratio - 1) <= 0.1);
}
writeResult('bandwidth', {
  name: 'bandwidth',
  ...runInfo({ machineBefore, serverKind: server.kind, started, quick }),
  parameters: params,
  results,
  targets,
  pass: Object.values(targets).every((c) => c.pass),
});
log('bandwidth: done');
