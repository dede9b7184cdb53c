// Benchmark b (failure latency). Run with `node bench/failure.mjs [--quick]`.
//
// 1. Fatal upload error: the fault proxy answers every UploadPart with 403 AccessDenied; we time
//    from the moment the proxy has written that response to the moment compactOnce() rejects,
//    and check the memory budget is back to 0 at that moment (p50/p99 over N runs).
// 2. Stalled socket: the proxy never answers UploadPart; with requestTimeoutMs T and no retries
//    (maxAttempts 1, maxIterationAttempts 1) we time from the stalled request's
//    arrival to the rejection. Target: T + 100 ms.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { args, check, log, machine, MiB, percentile, round, runInfo, writeResult } from './lib.mjs';
import { Compactor, S3Storage, SqliteMetadataStore } from '../dist/index.js';
import { startS3, createBucket, demoCredentials, demoRegion } from '../dist/demo/s3-server.js';
import { ingestTraffic } from '../dist/demo/traffic.js';
const { startFaultProxy, fault } = await (await import('./lib.mjs')).loadFaultProxy();

const a = args();
const quick = Boolean(a.quick);
const params = {
  runs403: Number(a.runs ?? (quick ? 8 : 20)),
  runsStall: Number(a.stallRuns ?? (quick ? 3 : 5)),
  requestTimeoutMs: 1000,
  mib: 24,
  streams: 300,
  objects: 12,
  partSize: 5 * MiB,
  memoryLimit: 32 * MiB,
};
const started = new Date();
const machineBefore = machine();
const server = await startS3(a.server ?? 'auto');
const proxy = await startFaultProxy(server.url);
const dir = mkdtempSync(path.join(tmpdir(), 's3sc-fail-'));
log(`failure: server ${server.kind}; ${JSON.stringify(params)}`);

const bucket = await createBucket(server.url, 'fail');
const storageCfg = { bucket, namespace: 'DEFAULT', region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true };
const metadata = new SqliteMetadataStore({ path: path.join(dir, 'meta.db') });
{
  const direct = new S3Storage({ ...storageCfg, endpoint: server.url });
  await ingestTraffic({ storage: direct, metadata, nodeId: 1, traffic: { streams: params.streams, objects: params.objects, totalBytes: params.mib * MiB, seed: 3 }, partSize: 16 * MiB });
  direct.close();
}

const nextTick = () => new Promise((r) => setImmediate(r));

async function timeFailure(compactor, arrival) {
  proxy.requests.length = 0;
  let tMark;
  const mark = arrival().then(() => (tMark = performance.now()));
  let error;
  try {
    await compactor.compactOnce();
  } catch (err) {
    error = err;
  }
  const tReject = performance.now();
  const inUseAtReject = compactor.budget.inUse;
  await Promise.race([mark, nextTick()]);
  if (!error) throw new Error('compactOnce did not fail');
  let tZero = tReject;
  while (compactor.budget.inUse !== 0 && performance.now() - tReject < 5000) {
    await new Promise((r) => setTimeout(r, 1));
    tZero = performance.now();
  }
  return {
    ms: tMark === undefined ? NaN : tReject - tMark,
    inUseAtReject,
    msToBudgetZero: tMark === undefined ? NaN : tZero - tMark,
    code: error.code,
    aborts: proxy.count('AbortMultipartUpload'),
  };
}

let fatal;
let stall;
try {
  // 1. 403 on UploadPart.
  {
    const storage = new S3Storage({ ...storageCfg, endpoint: proxy.url });
    const compactor = new Compactor({ storage, metadata, nodeId: 1, memoryLimit: params.memoryLimit, partSize: params.partSize, minPartSize: params.partSize });
    const rule = proxy.addRule({ op: 'UploadPart', times: Infinity, action: fault.status(403) });
    const runs = [];
    for (let i = 0; i < params.runs403; i++) {
      const r = await timeFailure(compactor, () => proxy.waitForResponses('UploadPart', 1));
      runs.push(r);
      log(`403 run ${i}: ${r.ms.toFixed(1)} ms, inUse at reject ${r.inUseAtReject}, ${r.code}, aborts sent ${r.aborts}`);
    }
    rule.remove();
    await compactor.close();
    storage.close();
    const ms = runs.map((r) => r.ms);
    fatal = {
      runs: runs.length,
      p50Ms: percentile(ms, 50),
      p99Ms: percentile(ms, 99),
      maxMs: Math.max(...ms),
      allReleasedAtReject: runs.every((r) => r.inUseAtReject === 0),
      errorCodes: [...new Set(runs.map((r) => r.code))],
      abortMultipartSent: runs.every((r) => r.aborts > 0),
      samplesMs: ms.map((x) => round(x, 2)),
    };
  }
  // 2. Stalled UploadPart.
  {
    const storage = new S3Storage({ ...storageCfg, endpoint: proxy.url, requestTimeoutMs: params.requestTimeoutMs, maxAttempts: 1 });
    const compactor = new Compactor({
      storage,
      metadata,
      nodeId: 1,
      memoryLimit: params.memoryLimit,
      partSize: params.partSize,
      minPartSize: params.partSize,
     
      maxIterationAttempts: 1,
    });
    const rule = proxy.addRule({ op: 'UploadPart', times: Infinity, action: fault.stall() });
    const runs = [];
    for (let i = 0; i < params.runsStall; i++) {
      const r = await timeFailure(compactor, () => proxy.waitFor('UploadPart', 1));
      runs.push(r);
      log(`stall run ${i}: ${r.ms.toFixed(1)} ms (timeout ${params.requestTimeoutMs}), inUse at reject ${r.inUseAtReject}, ${r.code}`);
    }
    rule.remove();
    await compactor.close();
    storage.close();
    const ms = runs.map((r) => r.ms);
    stall = {
      runs: runs.length,
      requestTimeoutMs: params.requestTimeoutMs,
      p50Ms: percentile(ms, 50),
      maxMs: Math.max(...ms),
      overTimeoutMaxMs: Math.max(...ms) - params.requestTimeoutMs,
      allReleasedAtReject: runs.every((r) => r.inUseAtReject === 0),
      errorCodes: [...new Set(runs.map((r) => r.code))],
      samplesMs: ms.map((x) => round(x, 1)),
    };
  }
} finally {
  await metadata.close();
  await proxy.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

const targets = {
  '403: p99 time to rejection < 200 ms': check('< 200 ms', round(fatal.p99Ms, 1), fatal.p99Ms < 200),
  '403: budget inUse 0 at rejection': check('every run', fatal.allReleasedAtReject, fatal.allReleasedAtReject),
  'stall: time to failure <= requestTimeoutMs + 100 ms': check(`<= ${params.requestTimeoutMs + 100} ms`, round(stall.maxMs, 0), stall.maxMs <= params.requestTimeoutMs + 100),
  'stall: budget inUse 0 at rejection': check('every run', stall.allReleasedAtReject, stall.allReleasedAtReject),
};
writeResult('failure', {
  name: 'failure',
  ...runInfo({ machineBefore, serverKind: server.kind, started, quick }),
  parameters: { ...params, partSizeMiB: params.partSize / MiB, memoryLimitMiB: params.memoryLimit / MiB, via: 'test/support/fault-proxy.ts in the bench process' },
  results: { fatal403: fatal, stalledSocket: stall },
  targets,
  pass: Object.values(targets).every((c) => c.pass),
});
log('failure: done');
