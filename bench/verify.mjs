// Benchmark e (verify speed, issue #11): on the demo's data (200 MiB over 2000 streams, Zipf
// sizes, 200 SSOs), `compact` then `verify` through the built CLI, both child processes on the
// same server; verify must take at most 1.5 x the compaction. Baseline in the same run: the old
// verify (readStream for every stream), timed on a sample of streams and scaled to all of them.
//
//   node bench/verify.mjs [--quick] [--server moto|fauxqs]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { args, check, log, machine, MiB, round, rootDir, writeResult } from './lib.mjs';
import { readStream, S3Storage, SqliteMetadataStore } from '../dist/index.js';
import { createBucket, demoCredentials, demoRegion, startS3 } from '../dist/demo/s3-server.js';
import { ingestTraffic } from '../dist/demo/traffic.js';

const a = args();
const quick = Boolean(a.quick);
const params = quick ? { mib: 48, streams: 500, objects: 50 } : { mib: 200, streams: 2000, objects: 200 };
const BASELINE_SAMPLE = quick ? 25 : 100;

const server = await startS3(a.server ?? 'auto');
const dir = mkdtempSync(path.join(tmpdir(), 's3sc-bench-verify-'));
const started = new Date();
const machineBefore = machine();
try {
  const bucket = await createBucket(server.url, 'verify');
  const db = path.join(dir, 'meta.db');
  const storage = new S3Storage({ bucket, namespace: 'DEFAULT', endpoint: server.url, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
  const metadata = new SqliteMetadataStore({ path: db });
  log(`verify: server ${server.kind}; ingesting ${params.mib} MiB over ${params.streams} streams in ${params.objects} SSOs`);
  await ingestTraffic({ storage, metadata, nodeId: 0, traffic: { streams: params.streams, objects: params.objects, totalBytes: params.mib * MiB, zipf: 1, seed: 42 }, concurrency: 4, partSize: 8 * MiB });
  await metadata.close();

  const global = ['--endpoint', server.url, '--bucket', bucket, '--metadata', db, '--json'];
  const compact = await cli([...global, 'compact', '--memory-limit', '64MiB', '--part-size', '8MiB']);
  const verify = await cli([...global, 'verify']);
  const report = JSON.parse(verify.stdout);
  if (!report.ok) throw new Error(`verify found problems: ${JSON.stringify(report.problems.slice(0, 3))}`);

  // The old verify: every stream through readStream (the footer and index cached, ranges read per stream).
  const ro = new SqliteMetadataStore({ path: db, readOnly: true });
  const streams = (await ro.listStreams()).filter((s) => s.state !== 'deleted');
  const step = Math.max(1, Math.floor(streams.length / BASELINE_SAMPLE));
  const sample = streams.filter((_, i) => i % step === 0).slice(0, BASELINE_SAMPLE);
  const t0 = performance.now();
  let running = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (running < sample.length) {
        const s = sample[running++];
        for await (const r of readStream({ storage, metadata: ro, streamId: s.streamId })) void r;
      }
    }),
  );
  const baselineSampleMs = performance.now() - t0;
  const baselineMs = (baselineSampleMs / sample.length) * streams.length;
  await ro.close();
  storage.close();

  const ratio = verify.ms / compact.ms;
  const results = {
    compactMs: round(compact.ms, 0),
    verifyMs: round(verify.ms, 0),
    verifyOverCompact: round(ratio, 2),
    baselineVerifyMs: round(baselineMs, 0),
    baselineOverCompact: round(baselineMs / compact.ms, 2),
    baselineSample: sample.length,
    streams: report.streams.checked,
    records: report.streams.records,
    objects: report.objects.checked,
    bytesVerified: report.objects.bytes,
  };
  const targets = { 'verify <= 1.5 x compaction': check('<= 1.5 x', `${round(ratio, 2)} x`, ratio <= 1.5) };
  log(`verify: compact ${results.compactMs} ms, verify ${results.verifyMs} ms (${results.verifyOverCompact} x); old verify ≈ ${results.baselineVerifyMs} ms (${results.baselineOverCompact} x, from ${sample.length} streams)`);
  writeResult('verify', { date: started.toISOString(), node: process.version, machine: machineBefore, serverKind: server.kind, quick, parameters: params, results, targets });
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

function cli(argv) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(process.execPath, [path.join(rootDir, 'dist/cli/main.js'), ...argv], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: demoCredentials.accessKeyId, AWS_SECRET_ACCESS_KEY: demoCredentials.secretAccessKey, AWS_REGION: demoRegion },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      const ms = performance.now() - t;
      if (code !== 0) reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr}`));
      else resolve({ ms, stdout });
    });
  });
}
