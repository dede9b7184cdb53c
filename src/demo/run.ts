/**
 * The demo: start an S3 emulator in-process (fauxqs on 127.0.0.1, a free port), create a bucket
 * and a temporary SQLite metadata file, ingest skewed traffic as stream set objects, compact them
 * once with a live progress bar, print a summary, read every stream back and compare it with what
 * was written, then close everything. Exit code 0 on success, 1 with one clear line on failure.
 *
 *   npm run demo -- --mib 200 --streams 2000 --objects 200
 *
 * Flags (or env DEMO_<FLAG>, e.g. DEMO_MIB=64):
 *   --mib N            payload MiB to ingest (default 200)
 *   --streams N        streams (default 2000)
 *   --objects N        stream set objects (default 200)
 *   --zipf X           Zipf exponent of stream sizes (default 1)
 *   --memory-mib N     compactor memoryLimit (default 64, so the run takes several iterations)
 *   --part-mib N       multipart part size (default 8; fauxqs refuses bodies above 11 MiB)
 *   --split-mib N      streamSplitSize (default 8, AutoMQ's)
 *   --threads N        worker threads (default 1)
 *   --server KIND      fauxqs (default) | moto
 *   --seed N           traffic seed (default 42)
 *   --keep             keep the metadata file and print its path
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Terminal } from '../cli/progress.js';
import { humanBytes } from '../util/units.js';
import { Compactor } from '../compactor/compactor.js';
import type { CompactorEvent } from '../compactor/events.js';
import { SqliteThreadStore } from '../metadata/index.js';
import { S3Storage } from '../storage/index.js';
import { createBucket, demoCredentials, demoRegion, FAUXQS_MAX_BODY, startS3, type S3Server } from './s3-server.js';
import { ingestTraffic } from './traffic.js';
import { verifyTraffic } from './verify-traffic.js';

const MiB = 1024 * 1024;

interface DemoOptions {
  mib: number;
  streams: number;
  objects: number;
  zipf: number;
  memoryMib: number;
  partMib: number;
  splitMib: number;
  threads: number;
  server: 'fauxqs' | 'moto';
  seed: number;
  keep: boolean;
}

const NUMERIC = ['mib', 'streams', 'objects', 'zipf', 'memory-mib', 'part-mib', 'split-mib', 'threads', 'seed'] as const;

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): DemoOptions | 'help' {
  const o: DemoOptions = { mib: 200, streams: 2000, objects: 200, zipf: 1, memoryMib: 64, partMib: 8, splitMib: 8, threads: 1, server: 'fauxqs', seed: 42, keep: false };
  const rec = o as unknown as Record<string, unknown>;
  for (const flag of NUMERIC) {
    const v = env[`DEMO_${flag.toUpperCase().replace(/-/g, '_')}`];
    if (v !== undefined && v !== '') rec[camel(flag)] = num(flag, v);
  }
  if (env.DEMO_SERVER) o.server = server(env.DEMO_SERVER);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return 'help';
    if (a === '--keep') {
      o.keep = true;
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unknown argument ${JSON.stringify(a)} (try --help)`);
    const flag = m[1]!;
    if (flag !== 'server' && !(NUMERIC as readonly string[]).includes(flag)) throw new Error(`unknown flag --${flag} (try --help)`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${flag} needs a value`);
    if (flag === 'server') o.server = server(value);
    else rec[camel(flag)] = num(flag, value);
  }
  if (o.partMib * MiB > FAUXQS_MAX_BODY && o.server === 'fauxqs' && !process.env.S3_ENDPOINT) {
    throw new Error(`--part-mib ${o.partMib} is above fauxqs's 11 MiB request body limit: use at most 10`);
  }
  return o;
}

function num(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${flag} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

function server(v: string): 'fauxqs' | 'moto' {
  if (v !== 'fauxqs' && v !== 'moto') throw new Error(`--server must be fauxqs or moto, got ${JSON.stringify(v)}`);
  return v;
}

const fmtMiB = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
const fmtS = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Live progress: the CLI's bar on a TTY (log lines above it), a few plain lines otherwise. */
class Progress {
  private readonly terminal = new Terminal(process.stdout);
  private readonly bar = this.terminal.progress({ label: 'compacting', unit: 'bytes' });
  private total = 0;
  private iterations = 0;
  private nextLine = 0.25;

  start(total: number, iterations: number): void {
    this.total = Math.max(1, total);
    this.iterations = iterations;
    if (this.terminal.isTTY) this.bar.start(total, `iter 1/${iterations}`);
    else console.log(`compacting: ${fmtMiB(total)} to read in ${iterations} iteration(s)`);
  }

  /** `iteration`: the one in progress, from 1. */
  update(read: number, written: number, iteration: number, elapsedMs: number): void {
    if (this.terminal.isTTY) {
      this.bar.update(read, `iter ${Math.min(iteration, this.iterations)}/${this.iterations}, wrote ${humanBytes(written)}`);
      return;
    }
    const speed = elapsedMs > 0 ? read / MiB / (elapsedMs / 1000) : 0;
    while (Math.min(read, this.total) / this.total >= this.nextLine && this.nextLine <= 1) {
      console.log(`  ${Math.round(this.nextLine * 100)}%: ${fmtMiB(read)} read, ${fmtMiB(written)} written, ${fmtS(elapsedMs)}, ${speed.toFixed(1)} MiB/s`);
      this.nextLine += 0.25;
    }
  }

  /** A line above the bar. */
  log(line: string): void {
    this.terminal.write(`${line}\n`);
  }

  stop(): void {
    this.bar.stop();
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  let opts: DemoOptions;
  try {
    const parsed = parseArgs(argv);
    if (parsed === 'help') {
      console.log('usage: npm run demo -- [--mib 200] [--streams 2000] [--objects 200] [--zipf 1] [--memory-mib 64] [--part-mib 8] [--split-mib 8] [--threads 1] [--server fauxqs|moto] [--seed 42] [--keep]');
      return 0;
    }
    opts = parsed;
  } catch (err) {
    console.error(`demo: ${(err as Error).message}`);
    return 2;
  }

  const t0 = performance.now();
  let s3: S3Server | undefined;
  let storage: S3Storage | undefined;
  let metadata: SqliteThreadStore | undefined;
  let compactor: Compactor | undefined;
  let progress: Progress | undefined;
  const dir = await mkdtemp(path.join(tmpdir(), 's3sc-demo-'));
  const nodeId = 1;
  try {
    s3 = await startS3(opts.server);
    const bucket = await createBucket(s3.url, 'demo');
    storage = new S3Storage({ bucket, namespace: 'DEFAULT', endpoint: s3.url, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
    const dbPath = path.join(dir, 'meta.db');
    metadata = await SqliteThreadStore.open({ path: dbPath });
    console.log(`S3 server: ${s3.kind} at ${s3.url}, bucket ${bucket}; metadata: ${dbPath}`);

    // 1. Ingest.
    const totalBytes = Math.round(opts.mib * MiB);
    console.log(`ingesting ~${fmtMiB(totalBytes)} over ${opts.streams} streams (Zipf ${opts.zipf}) as ${opts.objects} stream set objects ...`);
    const ingest = await ingestTraffic({
      storage,
      metadata,
      nodeId,
      traffic: { streams: opts.streams, objects: opts.objects, totalBytes, zipf: opts.zipf, seed: opts.seed },
      concurrency: 4,
      partSize: Math.round(opts.partMib * MiB),
    });
    const ssosBefore = (await metadata.listStreamSetObjects({ nodeId })).length;
    console.log(
      `ingested ${ingest.objects} objects, ${ingest.records} records, ${fmtMiB(ingest.payloadBytes)} payload (${fmtMiB(ingest.objectBytes)} in objects), ${ingest.digests.size} streams with data, in ${fmtS(ingest.durationMs)}`,
    );

    // 2. Compact once, with live progress.
    compactor = new Compactor({
      storage,
      metadata,
      nodeId,
      memoryLimit: Math.round(opts.memoryMib * MiB),
      partSize: Math.round(opts.partMib * MiB),
      streamSplitSize: Math.round(opts.splitMib * MiB),
      threads: opts.threads,
    });
    progress = new Progress();
    const p = progress;
    let compactStart = 0;
    let iteration = 0;
    let read = 0;
    let written = 0;
    let planned: Extract<CompactorEvent, { type: 'run.planned' }> | undefined;
    let rssPeakSampled = process.memoryUsage.rss();
    const sub = compactor.events$.subscribe((e) => {
      switch (e.type) {
        case 'run.planned':
          planned = e;
          p.start(e.bytesToRead, e.iterations);
          break;
        case 'iteration.finished':
          // Iterations start ahead of their data (the reader queues them): count the finished ones.
          iteration = Math.max(iteration, e.iteration + 1);
          break;
        case 'bytes':
          written = e.bytesWritten;
          read = e.bytesRead;
          break;
        case 'iteration.failed':
          p.log(`  iteration ${e.iteration} attempt ${e.attempt} failed: ${e.error.message}${e.willRetry ? ` (retrying in ${e.delayMs} ms)` : ''}`);
          break;
        default:
          break;
      }
      if (e.type === 'bytes' || e.type === 'iteration.finished') p.update(read, written, iteration + 1, performance.now() - compactStart);
    });
    const rssTimer = setInterval(() => {
      rssPeakSampled = Math.max(rssPeakSampled, process.memoryUsage.rss());
    }, 50);
    compactStart = performance.now();
    let report;
    try {
      report = await compactor.compactOnce();
    } finally {
      clearInterval(rssTimer);
      sub.unsubscribe();
      progress.stop();
    }
    if (!report.committed) throw new Error(`the compaction committed nothing (skipped ${report.skipped.length}, deferred ${report.deferred.length})`);
    const ssosAfter = (await metadata.listStreamSetObjects({ nodeId })).length;
    const live = await metadata.listAllLiveObjects?.();
    const sosAfter = live ? live.streamObjects.length : report.streamObjects.length;
    const maxRss = process.resourceUsage().maxRSS * 1024;

    const rows: [string, string][] = [
      ['objects before', `${ssosBefore} stream set objects`],
      ['objects after', `${ssosAfter + sosAfter} (${ssosAfter} stream set object${ssosAfter === 1 ? '' : 's'} + ${sosAfter} stream objects)`],
      ['compacted', `${report.compactedObjectIds.length} objects; skipped ${report.skipped.length}, deferred ${report.deferred.length}`],
      ['new SSO', report.newObjectId >= 0 ? `object ${report.newObjectId}` : 'none'],
      ['stream objects', `${report.streamObjects.length} (streams with a run > ${opts.splitMib} MiB)`],
      ['bytes read', `${fmtMiB(report.bytesRead)}${planned ? ` (planned ${fmtMiB(planned.bytesToRead)})` : ''}`],
      ['bytes written', fmtMiB(report.bytesWritten)],
      ['iterations', `${report.iterations} (memoryLimit ${opts.memoryMib} MiB, partSize ${opts.partMib} MiB${planned?.openReads ? `, ${planned.openReads} GETs kept open across them` : ''})`],
      ['restarts', String(report.restarts)],
      ['duration', `${fmtS(report.durationMs)} (compactOnce, planning included)`],
      ['throughput', `${(report.bytesRead / MiB / (report.durationMs / 1000)).toFixed(1)} MiB/s read, ${(report.bytesWritten / MiB / (report.durationMs / 1000)).toFixed(1)} MiB/s written`],
      ['peak budget', `${fmtMiB(report.peakBudgetBytes)} of ${fmtMiB(compactor.budget.limit)} (in use now: ${compactor.budget.inUse} B)`],
      ['peak RSS', `${fmtMiB(Math.max(maxRss, rssPeakSampled))} (process high-water; the in-process S3 emulator holds every object in this heap too)`],
    ];
    console.log('\ncompaction summary');
    for (const [k, v] of rows) console.log(`  ${k.padEnd(15)} ${v}`);

    // 3. Verify every record.
    const verify = await verifyTraffic({ storage, metadata, digests: ingest.digests, concurrency: 8 });
    if (verify.failedStreams > 0) {
      for (const m of verify.mismatches) console.error(`  ${m}`);
      throw new Error(`verification failed: ${verify.failedStreams} of ${verify.streams} streams differ from what was written`);
    }
    if (compactor.budget.inUse !== 0) throw new Error(`memory budget not released after the run: ${compactor.budget.inUse} B still in use`);
    console.log(`\nverified ${verify.streams} streams, ${verify.records} records, ${fmtMiB(verify.bytes)}: identical to what was written (${fmtS(verify.durationMs)})`);

    await compactor.close();
    compactor = undefined;
    console.log(`demo OK in ${fmtS(performance.now() - t0)}`);
    return 0;
  } catch (err) {
    progress?.stop();
    const e = err as { code?: string; message?: string };
    console.error(`demo failed: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`);
    return 1;
  } finally {
    await compactor?.close().catch(() => {});
    await metadata?.close().catch(() => {});
    storage?.close();
    await s3?.stop().catch(() => {});
    if (opts.keep) console.log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
