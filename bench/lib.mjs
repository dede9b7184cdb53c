// Shared helpers of the benchmarks (plain ESM over the built dist/).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const MiB = 1024 * 1024;
export const benchDir = path.dirname(fileURLToPath(import.meta.url));
export const resultsDir = path.join(benchDir, 'results');
export const rootDir = path.dirname(benchDir);

export function args(argv = process.argv.slice(2)) {
  const out = { quick: false };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) continue;
    const k = m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (m[2] !== undefined) out[k] = m[2];
    else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) out[k] = argv[++i];
    else out[k] = true;
  }
  return out;
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemMiB: Math.round(os.totalmem() / MiB),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
    loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

export const round = (x, d = 1) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);

/** What every result file starts with: the machine before and after the run, Node, the server, when, quick or not. */
export function runInfo({ machineBefore, serverKind, started, quick }) {
  return { machine: machineBefore, machineAfter: machine(), node: process.version, serverKind, date: started.toISOString(), quick };
}

export function writeResult(name, data) {
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
  return file;
}

export function readResult(name) {
  const file = path.join(resultsDir, `${name}.json`);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
}

/** Samples this process's RSS (all threads) every `ms`; `stop()` returns the peak seen. */
export function rssSampler(ms = 20) {
  let peak = process.memoryUsage.rss();
  const t = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, ms);
  t.unref();
  return {
    get peak() {
      return Math.max(peak, process.memoryUsage.rss());
    },
    stop() {
      clearInterval(t);
      return Math.max(peak, process.memoryUsage.rss());
    },
  };
}

/** Runs `node ...args` and resolves with the JSON of the last line it prints; `label` names it in errors. */
export function runJsonChild(args, label) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${label} child exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch (err) {
        reject(new Error(`${label}: bad output ${out.slice(0, 500)}`));
      }
    });
  });
}

export const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

/** A target check: { target, value, pass }. */
export function check(target, value, pass) {
  return { target, value, pass: Boolean(pass) };
}

/**
 * test/support/fault-proxy.ts, loaded with tsx's scoped `tsImport` (not `node --import tsx`:
 * a global tsx loader is inherited by the compactor's worker threads, where it makes
 * `instanceof CompactorError` fail across module instances — see bench/README.md).
 */
export async function loadFaultProxy() {
  const { tsImport } = await import('tsx/esm/api');
  return tsImport(path.join(rootDir, 'test/support/fault-proxy.ts'), import.meta.url);
}

/**
 * What a scenario comparing runs on one server starts with: the S3 server (`kind`: moto when
 * importable, else fauxqs), a fault proxy in front of it that holds every response `latencyMs`
 * before its first byte, a temporary folder, the part size the server takes, and the machine
 * before the run. `close()` ends them; `write(data)` writes the result file with its header.
 */
export async function startBench(name, { kind = 'auto', latencyMs, quick }) {
  const started = new Date();
  const machineBefore = machine();
  const { startS3 } = await import('../dist/demo/s3-server.js');
  const server = await startS3(kind);
  const { startFaultProxy, fault } = await loadFaultProxy();
  const proxy = await startFaultProxy(server.url);
  proxy.addRule({ times: Infinity, action: fault.delay(latencyMs) });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `s3sc-bench-${name}-`));
  return {
    server,
    proxy,
    dir,
    // fauxqs refuses request bodies above 11 MiB.
    partSize: server.kind === 'fauxqs' ? 8 * MiB : 16 * MiB,
    async close() {
      await proxy.close();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    write: (data) => writeResult(name, { name, ...runInfo({ machineBefore, serverKind: server.kind, started, quick }), ...data }),
  };
}

/**
 * A fresh bucket named `bucket` on the server holding `traffic` (demo/traffic.js) of node 1, its
 * metadata in a new SQLite file at `dbPath`, both closed again: the data a child process then
 * compacts or copies. Returns the bucket's name and what the ingest wrote.
 */
export async function ingestFresh(serverUrl, { bucket: name, dbPath, traffic, partSize }) {
  const { S3Storage, SqliteMetadataStore } = await import('../dist/index.js');
  const { createBucket, demoCredentials, demoRegion } = await import('../dist/demo/s3-server.js');
  const { ingestTraffic } = await import('../dist/demo/traffic.js');
  const bucket = await createBucket(serverUrl, name);
  const storage = new S3Storage({ bucket, namespace: 'DEFAULT', endpoint: serverUrl, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
  const metadata = new SqliteMetadataStore({ path: dbPath });
  try {
    return { bucket, ingest: await ingestTraffic({ storage, metadata, nodeId: 1, traffic, partSize, concurrency: 4 }) };
  } finally {
    await metadata.close();
    storage.close();
  }
}

/**
 * Deletes a bucket with everything in it (objects, unfinished multipart uploads). The matrix
 * writes tens of GiB over a full run, and moto keeps every byte in memory: without this it ran
 * out of room late in the matrix and reset connections (the raw copy then failed twice in a row).
 */
export async function dropBucket(endpoint, bucket) {
  const { S3Client, ListObjectsV2Command, DeleteObjectsCommand, ListMultipartUploadsCommand, AbortMultipartUploadCommand, DeleteBucketCommand } = await import('@aws-sdk/client-s3');
  const { demoCredentials, demoRegion } = await import('../dist/demo/s3-server.js');
  const client = new S3Client({ endpoint, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
  try {
    for (let token; ; ) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
      if (keys.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
      if (!page.IsTruncated) break;
      token = page.NextContinuationToken;
    }
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of uploads.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}
