// Are the outputs byte-identical to another build's? Builds git revision `--rev` (default HEAD)
// in a temporary worktree, ingests once, then compacts copies of the same bucket and metadata
// with that build and with this checkout's dist/, and compares every object of both buckets
// (MD5 and ETag: a multipart ETag also pins the part boundaries).
//
//   node bench/identical.mjs --rev <commit> [--cases "60:64:8:8,40:24:5:2,..."] [--options '{"maxOpenReads":0}']
//
// A case is mib:memoryLimitMiB:partSizeMiB:streamSplitSizeMiB. `--options`: more Compactor
// options for this checkout's run only (a change that moves iteration boundaries on purpose, as
// open reads counted in the budget do, is compared with it turned off). Prints one line per case
// and exits 1 when any object differs. A check for refactors of the data path, not a benchmark.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CopyObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { args, log, MiB, rootDir } from './lib.mjs';

const a = args();
const rev = String(a.rev ?? 'HEAD');
const cases = String(a.cases ?? '60:64:8:8,40:24:5:2,30:16:5:1,114:64:16:8,114:200:16:8').split(',').map((c) => c.split(':').map(Number));
const checkoutOptions = a.options ? JSON.parse(String(a.options)) : {};

const work = mkdtempSync(path.join(tmpdir(), 's3sc-identical-'));
const tree = path.join(work, 'tree');
execFileSync('git', ['-C', rootDir, 'worktree', 'add', '--detach', tree, rev], { stdio: 'ignore' });
let failed = false;
try {
  symlinkSync(path.join(rootDir, 'node_modules'), path.join(tree, 'node_modules'));
  // The revision's own build script: a build is more than tsc (worker-entry.cjs is copied in).
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: tree, stdio: 'inherit' });
  const builds = { [rev]: path.join(tree, 'dist'), checkout: path.join(rootDir, 'dist') };
  const { startS3, createBucket, demoCredentials, demoRegion } = await import(path.join(rootDir, 'dist/demo/s3-server.js'));
  const { ingestTraffic } = await import(path.join(rootDir, 'dist/demo/traffic.js'));
  const server = await startS3(a.server ?? 'auto');
  try {
    for (const [mib, limit, part, split] of cases) {
      const config = (bucket) => ({ bucket, namespace: 'DEFAULT', endpoint: server.url, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
      const lib = await import(path.join(builds.checkout, 'index.js'));
      // One ingest (it is not deterministic in time), copied for each build.
      const source = await createBucket(server.url, `ident-src-${mib}-${limit}`);
      {
        const storage = new lib.S3Storage(config(source));
        const metadata = new lib.SqliteMetadataStore({ path: path.join(work, `${source}.db`) });
        await ingestTraffic({ storage, metadata, nodeId: 1, traffic: { streams: 300, objects: 40, totalBytes: mib * MiB, zipf: 1, seed: 11 }, partSize: 16 * MiB, concurrency: 4 });
        storage.close();
        await metadata.close();
      }
      const objects = {};
      for (const [name, dist] of Object.entries(builds)) {
        const build = await import(path.join(dist, 'index.js'));
        const bucket = await createBucket(server.url, `ident-${name === 'checkout' ? 'b' : 'a'}-${mib}-${limit}`);
        const dbPath = path.join(work, `${bucket}.db`);
        copyFileSync(path.join(work, `${source}.db`), dbPath);
        const client = build.createS3Client(config(bucket));
        for (const o of (await client.send(new ListObjectsV2Command({ Bucket: source }))).Contents ?? []) {
          await client.send(new CopyObjectCommand({ Bucket: bucket, Key: o.Key, CopySource: `${source}/${o.Key}` }));
        }
        const storage = new build.S3Storage(config(bucket));
        const metadata = new build.SqliteMetadataStore({ path: dbPath });
        const c = new build.Compactor({
          storage,
          metadata,
          nodeId: 1,
          memoryLimit: limit * MiB,
          partSize: part * MiB,
          minPartSize: 5 * MiB,
          streamSplitSize: split * MiB,
          ...(name === 'checkout' ? checkoutOptions : {}),
        });
        const report = await c.compactOnce();
        await c.close();
        const seen = {};
        for (const o of (await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []) {
          const body = await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }))).Body.transformToByteArray();
          const { ETag } = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: o.Key }));
          seen[o.Key] = `${createHash('md5').update(body).digest('hex')} ${ETag}`;
        }
        objects[name] = { seen, iterations: report.iterations, streamObjects: report.streamObjects.length };
        client.destroy();
        storage.close();
        await metadata.close();
      }
      const keys = new Set(Object.values(objects).flatMap((o) => Object.keys(o.seen)));
      const differ = [...keys].filter((k) => objects[rev].seen[k] !== objects.checkout.seen[k]);
      failed ||= differ.length > 0;
      log(
        `${mib} MiB, limit ${limit} MiB, part ${part} MiB, split ${split} MiB: ${keys.size} objects, ${differ.length} differ` +
          ` (iterations ${objects[rev].iterations} / ${objects.checkout.iterations}, stream objects ${objects[rev].streamObjects} / ${objects.checkout.streamObjects})` +
          (differ.length > 0 ? `: ${differ.slice(0, 5).join(', ')}` : ''),
      );
    }
  } finally {
    await server.stop();
  }
} finally {
  execFileSync('git', ['-C', rootDir, 'worktree', 'remove', '--force', tree], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
log(failed ? `outputs differ from ${rev}` : `outputs byte-identical to ${rev}`);
process.exit(failed ? 1 : 0);
