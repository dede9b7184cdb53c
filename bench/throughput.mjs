// Benchmark a (throughput) and d (host responsiveness).
// Run with `node bench/throughput.mjs [--quick]` (bench/run.mjs does); the fault proxy is
// test/support/fault-proxy.ts, loaded with tsx's scoped tsImport.


//
// One S3 server (moto when importable, else fauxqs in-process), two latency profiles: loopback
// as it is, and +30 ms before the first byte of every response (fault proxy `delay`, in this
// process). For each profile: a fresh bucket with the same data (same seed), then each approach
// in its own child process: raw copy, straightforward, compactor (last: it commits).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { args, benchDir, check, log, machine, MiB, round, writeResult } from './lib.mjs';
import { S3Storage, SqliteMetadataStore } from '../dist/index.js';
import { startS3, createBucket, demoCredentials, demoRegion } from '../dist/demo/s3-server.js';
import { ingestTraffic } from '../dist/demo/traffic.js';
const { startFaultProxy, fault } = await (await import('./lib.mjs')).loadFaultProxy();

const a = args();
const quick = Boolean(a.quick);
const params = {
  mib: Number(a.mib ?? (quick ? 48 : 256)),
  streams: Number(a.streams ?? (quick ? 1000 : 1200)),
  objects: Number(a.objects ?? (quick ? 48 : 128)),
  zipf: 1,
  latencyMs: 30,
  seed: 7,
};

const started = new Date();
const machineBefore = machine();
const server = await startS3(a.server ?? 'auto');
// fauxqs refuses bodies above 11 MiB.
params.partSize = server.kind === 'fauxqs' ? 8 * MiB : 16 * MiB;
params.memoryLimit = Number(a.memoryMib ?? 200) * MiB;
log(`throughput: server ${server.kind} ${server.url}; ${JSON.stringify(params)}`);
const proxy = await startFaultProxy(server.url);
proxy.addRule({ times: Infinity, action: fault.delay(params.latencyMs) });

function runChild(cfg) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(benchDir, 'throughput-child.mjs'), JSON.stringify(cfg)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${cfg.approach} child exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch (err) {
        reject(new Error(`${cfg.approach}: bad output ${out.slice(0, 500)}`));
      }
    });
  });
}

const profiles = {};
const dir = mkdtempSync(path.join(tmpdir(), 's3sc-bench-'));
try {
  for (const profile of ['loopback', `latency${params.latencyMs}ms`]) {
    const endpoint = profile === 'loopback' ? server.url : proxy.url;
    const bucket = await createBucket(server.url, `tp-${profile}`);
    const dbPath = path.join(dir, `${profile}.db`);
    const storage = new S3Storage({ bucket, namespace: 'DEFAULT', endpoint: server.url, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
    const metadata = new SqliteMetadataStore({ path: dbPath });
    const ing = await ingestTraffic({
      storage,
      metadata,
      nodeId: 1,
      traffic: { streams: params.streams, objects: params.objects, totalBytes: params.mib * MiB, zipf: params.zipf, seed: params.seed },
      partSize: params.partSize,
      concurrency: 4,
    });
    await metadata.close();
    storage.close();
    log(`${profile}: ingested ${ing.objects} objects, ${(ing.objectBytes / MiB).toFixed(1)} MiB, ${ing.records} records in ${(ing.durationMs / 1000).toFixed(1)} s`);
    const results = {};
    for (const approach of ['raw', 'straightforward', 'compactor']) {
      const r = await runChild({ approach, endpoint, bucket, dbPath, nodeId: 1, partSize: params.partSize, memoryLimit: params.memoryLimit });
      log(`${profile} ${approach}: ${r.mibPerS.toFixed(1)} MiB/s (${(r.wallMs / 1000).toFixed(1)} s), peak RSS ${r.peakRssMiB.toFixed(0)} MiB, event loop p99 ${r.eventLoop.p99Ms.toFixed(1)} ms max ${r.eventLoop.maxMs.toFixed(1)} ms`);
      results[approach] = r;
    }
    profiles[profile] = { ingest: { objects: ing.objects, records: ing.records, objectMiB: ing.objectBytes / MiB, payloadMiB: ing.payloadBytes / MiB }, results };
  }
} finally {
  await proxy.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

// Targets.
const targets = {};
for (const [profile, p] of Object.entries(profiles)) {
  const { compactor, raw, straightforward } = p.results;
  const vsRaw = compactor.mibPerS / raw.mibPerS;
  const vsStraight = compactor.mibPerS / straightforward.mibPerS;
  targets[profile] = {
    'compactor/raw >= 0.85': check('>= 0.85', round(vsRaw, 2), vsRaw >= 0.85),
    'compactor/straightforward >= 2': check('>= 2', round(vsStraight, 2), vsStraight >= 2),
    'peak RSS <= memoryLimit + 100 MiB': check(`<= ${params.memoryLimit / MiB + 100} MiB`, round(compactor.peakRssMiB, 0), compactor.peakRssMiB <= params.memoryLimit / MiB + 100),
    'budget high-water <= memoryLimit': check(`<= ${params.memoryLimit / MiB} MiB`, round(compactor.peakBudgetMiB, 1), compactor.peakBudgetMiB <= params.memoryLimit / MiB),
    'budget released (inUse 0)': check('0', compactor.budgetInUseAfter, compactor.budgetInUseAfter === 0),
  };
}
const common = { machine: machineBefore, machineAfter: machine(), node: process.version, serverKind: server.kind, date: started.toISOString(), quick };
writeResult('throughput', {
  name: 'throughput',
  ...common,
  parameters: { ...params, memoryLimitMiB: params.memoryLimit / MiB, partSizeMiB: params.partSize / MiB, readsInFlight: 4, partsInFlight: 4, maxGetMiB: 16 },
  results: profiles,
  targets,
  pass: Object.values(targets).every((t) => Object.values(t).every((c) => c.pass)),
});

const lb = profiles.loopback.results;
const resp = {
  'compactor p99 < 5 ms': check('< 5 ms', round(lb.compactor.eventLoop.p99Ms, 2), lb.compactor.eventLoop.p99Ms < 5),
  'compactor max < 30 ms': check('< 30 ms', round(lb.compactor.eventLoop.maxMs, 2), lb.compactor.eventLoop.maxMs < 30),
};
writeResult('responsiveness', {
  name: 'responsiveness',
  ...common,
  parameters: { method: 'perf_hooks.monitorEventLoopDelay({ resolution: 1 }) on the main thread of the process running the approach, during the loopback run of the throughput benchmark', ...params },
  results: Object.fromEntries(['compactor', 'straightforward', 'raw'].map((k) => [k, { ...lb[k].eventLoop, wallMs: lb[k].wallMs }])),
  targets: resp,
  pass: Object.values(resp).every((c) => c.pass),
});
log('throughput: done');
