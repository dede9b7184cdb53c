// Benchmark h (issue #9's "≥ 0.9x the raw copy" and "CPU within 1.5x", what they leave room for):
// the raw copy against floors of it that add only the work every compactor must do before its
// first upload (throughput-child.mjs: rawAfterIndex, rawReadFirst, rawIndexOverlap), and the
// compactor under 64 MiB, on the same data, run after run in the same minutes. A floor that
// stays under 0.9x of the raw copy bounds every compactor that takes its path on this machine.
//
//   node bench/ceiling.mjs [--quick] [--reps N] [--mib 114,256] [--server moto|fauxqs]
import path from 'node:path';
import { args, benchDir, dropBucket, ingestFresh, log, MiB, percentile, round, runJsonChild, startBench } from './lib.mjs';

const a = args();
const quick = Boolean(a.quick);
const reps = Number(a.reps ?? (quick ? 1 : 3));
const sizes = a.mib === undefined ? (quick ? [24] : [114, 256]) : String(a.mib).split(',').map(Number);
// The throughput benchmark's data (bench/throughput.mjs) and its tighter limit (the compactor reads by range under it).
const params = { sizesMiB: sizes, streams: 400, objectsPerMiB: 64 / 114, zipf: 1, seed: 7, memoryLimitMiB: 64, latencyMs: 30, reps };
const approaches = ['raw', 'rawAfterIndex', 'rawReadFirst', 'rawIndexOverlap', 'compactor'];

const bench = await startBench('ceiling', { kind: a.server, latencyMs: params.latencyMs, quick });
const { server, proxy, dir } = bench;
params.partSize = bench.partSize;
const cases = {};
try {
  for (const mib of sizes) {
    for (const profile of ['loopback', `latency${params.latencyMs}ms`]) {
      const name = `${mib} MiB, ${profile}`;
      const runs = Object.fromEntries(approaches.map((x) => [x, []]));
      for (let r = 0; r < reps; r++) {
        // A fresh ingest each repetition: the compactor (last) commits and retires its sources.
        const dbPath = path.join(dir, `${mib}-${profile}-${r}.db`);
        const traffic = { streams: params.streams, objects: Math.max(8, Math.round(mib * params.objectsPerMiB)), totalBytes: mib * MiB, zipf: params.zipf, seed: params.seed };
        const { bucket } = await ingestFresh(server.url, { bucket: `ceiling-${mib}-${profile}-${r}`, dbPath, traffic, partSize: params.partSize });
        // The floors in a rotating order (a shared machine drifts), the compactor last.
        const floors = approaches.slice(0, -1);
        for (const approach of [...floors.slice(r % floors.length), ...floors.slice(0, r % floors.length), 'compactor']) {
          const cfg = { approach, endpoint: profile === 'loopback' ? server.url : proxy.url, bucket, dbPath, nodeId: 1, partSize: params.partSize, memoryLimit: params.memoryLimitMiB * MiB };
          const out = await runJsonChild([path.join(benchDir, 'throughput-child.mjs'), JSON.stringify(cfg)], `ceiling ${approach}`);
          runs[approach].push({ mibPerS: out.mibPerS, cpuMsPerMiB: out.cpuMsPerMiB, wallMs: out.wallMs });
          log(`ceiling ${name} (${r + 1}/${reps}) ${approach}: ${out.mibPerS.toFixed(1)} MiB/s, CPU ${out.cpuMsPerMiB.toFixed(1)} ms/MiB`);
        }
        await dropBucket(server.url, bucket);
      }
      // Ratios to the raw copy within each repetition, then their medians.
      const median = (xs) => percentile(xs, 50);
      cases[name] = {
        mib,
        profile,
        approaches: Object.fromEntries(
          approaches.map((x) => [
            x,
            {
              mibPerS: round(median(runs[x].map((q) => q.mibPerS)), 1),
              cpuMsPerMiB: round(median(runs[x].map((q) => q.cpuMsPerMiB)), 1),
              vsRaw: round(median(runs[x].map((q, i) => q.mibPerS / runs.raw[i].mibPerS)), 2),
              cpuVsRaw: round(median(runs[x].map((q, i) => q.cpuMsPerMiB / runs.raw[i].cpuMsPerMiB)), 2),
              runs: runs[x].map((q) => ({ mibPerS: round(q.mibPerS, 1), cpuMsPerMiB: round(q.cpuMsPerMiB, 1) })),
            },
          ]),
        ),
      };
    }
  }
} finally {
  await bench.close();
}

bench.write({
  parameters: params,
  cases,
});
log('ceiling: done');
