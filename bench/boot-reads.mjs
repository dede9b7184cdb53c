// Benchmark g (hostReadsWhileBooting, issue #9's "index reads overlap worker boot"): a first run
// right after `new Compactor()`, with the option off and on, run after run on the same data
// (each on a fresh ingest: the compactor commits), on loopback and with 30 ms before the first
// byte of every response. Reported: when the plan came, throughput, and the host's event-loop
// delay (p99 and max) during the run, each approach in its own process (throughput-child.mjs).
//
//   node bench/boot-reads.mjs [--quick] [--reps N] [--server moto|fauxqs]
import path from 'node:path';
import { args, benchDir, ingestFresh, log, MiB, percentile, round, runJsonChild, startBench } from './lib.mjs';

const a = args();
const quick = Boolean(a.quick);
const reps = Number(a.reps ?? (quick ? 1 : 3));
const params = { mib: quick ? 24 : 114, streams: 400, objects: quick ? 16 : 64, memoryLimitMiB: 64, latencyMs: 30, seed: 7, reps };

const bench = await startBench('boot-reads', { kind: a.server, latencyMs: params.latencyMs, quick });
const { server, proxy, dir } = bench;
params.partSize = bench.partSize;
const results = {};
try {
  for (const profile of ['loopback', `latency${params.latencyMs}ms`]) {
    const runs = { off: [], on: [] };
    for (let r = 0; r < reps; r++) {
      // Alternated within a repetition: a shared machine drifts, neighbours compare fairly.
      for (const variant of r % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
        const dbPath = path.join(dir, `${profile}-${r}-${variant}.db`);
        const traffic = { streams: params.streams, objects: params.objects, totalBytes: params.mib * MiB, zipf: 1, seed: params.seed };
        const { bucket } = await ingestFresh(server.url, { bucket: `boot-${profile}-${r}-${variant}`, dbPath, traffic, partSize: params.partSize });
        const cfg = {
          approach: 'compactor',
          endpoint: profile === 'loopback' ? server.url : proxy.url,
          bucket,
          dbPath,
          nodeId: 1,
          partSize: params.partSize,
          memoryLimit: params.memoryLimitMiB * MiB,
          compactorOptions: { hostReadsWhileBooting: variant === 'on' },
        };
        const out = await runJsonChild([path.join(benchDir, 'throughput-child.mjs'), JSON.stringify(cfg)], `boot-reads ${variant}`);
        runs[variant].push({ mibPerS: round(out.mibPerS, 1), plannedMs: round(out.plannedMs, 0), eventLoopP99Ms: round(out.eventLoop.p99Ms, 2), eventLoopMaxMs: round(out.eventLoop.maxMs, 1) });
        log(`boot-reads ${profile} (${r + 1}/${reps}) ${variant}: ${out.mibPerS.toFixed(1)} MiB/s, planned at ${out.plannedMs.toFixed(0)} ms, event loop p99 ${out.eventLoop.p99Ms.toFixed(2)} ms, max ${out.eventLoop.maxMs.toFixed(1)} ms`);
      }
    }
    const median = (rs, k) => percentile(rs.map((x) => x[k]), 50);
    results[profile] = Object.fromEntries(
      Object.entries(runs).map(([v, rs]) => [v, { runs: rs, mibPerS: median(rs, 'mibPerS'), plannedMs: median(rs, 'plannedMs'), eventLoopP99Ms: median(rs, 'eventLoopP99Ms'), eventLoopMaxMs: median(rs, 'eventLoopMaxMs') }]),
    );
  }
} finally {
  await bench.close();
}

bench.write({
  parameters: params,
  results,
});
log('boot-reads: done');
