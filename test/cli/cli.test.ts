/**
 * The built command line against the run's S3 server: a whole session (ingest-sample → plan →
 * compact → verify → inspect → gc) on a fresh bucket and metadata file, then the failure modes:
 * usage errors exit 2 with one line naming the option, an unreachable endpoint exits 1 with one
 * line, never a stack trace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeObject, objectKey } from '../../src/format/index.js';
import { createTestBucket, directClient, s3Endpoint } from '../support/env.js';
import { fault, startFaultProxy } from '../support/fault-proxy.js';
import { CLI, ROOT, cliEnv, ensureBuilt, lines, runCli, type CliResult } from './helpers.js';

let dir: string;
let bucket: string;
let global: string[];

beforeAll(async () => {
  await ensureBuilt();
  bucket = await createTestBucket('cli');
  dir = mkdtempSync(join(tmpdir(), 's3sc-cli-'));
  global = ['--endpoint', s3Endpoint(), '--bucket', bucket, '--metadata', join(dir, 'meta.db'), '--node-id', '3'];
}, 200_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function objectIdOf(key: string): number {
  return Number(key.split('/').pop());
}

/** A failure is one line on stderr, without a stack trace. */
function expectOneLineError(r: CliResult, code: number, ...parts: (string | RegExp)[]): void {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(code);
  const errLines = lines(r.stderr);
  expect(errLines, r.stderr).toHaveLength(1);
  expect(errLines[0]).toMatch(/^error: /);
  for (const p of parts) {
    if (typeof p === 'string') expect(errLines[0]).toContain(p);
    else expect(errLines[0]).toMatch(p);
  }
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('a session: ingest-sample, plan, compact, verify, inspect, gc', () => {
  let liveSso = -1;
  let streamObject = -1;
  let soCount = 0;

  it('ingest-sample creates streams and uploads skewed stream set objects', async () => {
    const r = await runCli([...global, 'ingest-sample', '--streams', '4', '--objects', '5', '--bytes', '1MiB', '--record-size', '8KiB', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { nodeId: number; streams: { streamId: number; endOffset: number }[]; objects: { objectId: number; objectSize: number }[]; payloadBytes: number };
    expect(out.nodeId).toBe(3);
    expect(out.streams.map((s) => s.streamId)).toEqual([0, 1, 2, 3]);
    expect(out.objects).toHaveLength(5);
    expect(out.payloadBytes).toBe(1024 * 1024);
    // skewed: the first stream is the largest
    expect(out.streams[0]!.endOffset).toBeGreaterThan(out.streams[3]!.endOffset);
  });

  it('plan prints the dry run (text and --json) and writes nothing', async () => {
    const text = await runCli([...global, 'plan', '--stream-split-size', '256KiB']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('compaction plan: 5 SSO(s) compacted away');
    const json = await runCli([...global, '--json', 'plan', '--stream-split-size', '256KiB']);
    expect(json.code, json.stderr).toBe(0);
    const plan = JSON.parse(json.stdout) as { compactedObjectIds: number[]; streamObjects: unknown[]; iterations: unknown[] };
    expect(plan.compactedObjectIds).toEqual([1, 2, 3, 4, 5]);
    expect(plan.streamObjects.length).toBeGreaterThanOrEqual(1);
  });

  it('compact --json commits and reports', async () => {
    const r = await runCli([...global, '--json', 'compact', '--stream-split-size', '256KiB', '--memory-limit', '1MiB']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      committed: boolean;
      newObjectId: number;
      compactedObjectIds: number[];
      streamObjects: { objectId: number; streamId: number }[];
      bytesRead: number;
      bytesWritten: number;
      iterations: number;
    };
    expect(report.committed).toBe(true);
    expect(report.compactedObjectIds).toEqual([1, 2, 3, 4, 5]);
    expect(report.streamObjects.length).toBeGreaterThanOrEqual(1);
    expect(report.bytesRead).toBeGreaterThan(1024 * 1024);
    expect(report.iterations).toBeGreaterThanOrEqual(2); // 1 MiB of memory for > 1 MiB of data
    liveSso = report.newObjectId;
    streamObject = report.streamObjects[0]!.objectId;
    soCount = report.streamObjects.length;
    expect(liveSso).toBeGreaterThan(5);
  });

  it('a second compact has nothing to do', async () => {
    const r = await runCli([...global, 'compact']);
    expect(r.code, r.stderr).toBe(0);
    // Issue #8: a run that commits nothing says why.
    expect(r.stdout).toContain('nothing to compact among 1 candidate SSO(s) of node 3');
    expect(r.stdout).toContain('share no stream with another candidate');
  });

  it('verify: every stream reads back contiguous and every live object decodes', async () => {
    const r = await runCli([...global, 'verify']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^verify: 4 stream\(s\), \d+ record\(s\); \d+ live object\(s\) .*: OK$/m);
    const json = await runCli([...global, '--json', 'verify']);
    const report = JSON.parse(json.stdout) as { ok: boolean; streams: { checked: number }; objects: { checked: number } };
    expect(report.ok).toBe(true);
    expect(report.streams.checked).toBe(4);
    expect(report.objects.checked).toBe(1 + soCount);
  });

  it('inspect a live key shows the footer, index entries and stream ranges', async () => {
    const key = objectKey(liveSso, 'DEFAULT');
    const r = await runCli([...global, 'inspect', key]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`object ${key} (s3://${bucket}/${key})`);
    expect(r.stdout).toMatch(/footer: index at byte \d+/);
    expect(r.stdout).toContain('index entries:');
    expect(r.stdout).toContain('stream ranges:');
    expect(r.stdout).toContain('metadata: live stream set object of node 3');
    // Footer and index from one read of the object's tail (it took two GETs, the footer's and
    // the index read's own tail, and a third for an index past 8 KiB).
    const proxy = await startFaultProxy(s3Endpoint());
    try {
      const via = await runCli(['--endpoint', proxy.url, ...global.slice(2), 'inspect', key]);
      expect(via.code, via.stderr).toBe(0);
      expect(via.stdout).toBe(r.stdout);
      expect(proxy.count('GetObject')).toBe(1);
    } finally {
      await proxy.close();
    }

    const so = await runCli([...global, '--json', 'inspect', String(streamObject), '--records']);
    expect(so.code, so.stderr).toBe(0);
    const view = JSON.parse(so.stdout) as { entries: { streamId: number }[]; streams: { streamId: number; startOffset: number }[]; records: { baseOffset: number }[]; metadata: { kind: string } };
    expect(view.metadata.kind).toBe('stream object');
    expect(view.entries.length).toBeGreaterThan(0);
    expect(view.streams).toHaveLength(1);
    expect(view.records.length).toBeGreaterThan(0);
    expect(view.records[0]!.baseOffset).toBe(view.streams[0]!.startOffset);
  });

  it('gc --dry-run reports and removes nothing', async () => {
    const r = await runCli([...global, '--json', 'gc', '--dry-run', '--safety-age', '0']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { dryRun: boolean; deletedObjects: string[]; safetyAgeMs: number };
    expect(report.dryRun).toBe(true);
    expect(report.safetyAgeMs).toBe(0);
    expect(report.deletedObjects).toEqual([]);
    const text = await runCli([...global, 'gc', '--dry-run']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('gc (dry run): would remove 0 unknown object(s)');
  });

  it('verify exits 3 and names the object when a live object is missing', async () => {
    const key = objectKey(streamObject, 'DEFAULT');
    const client = directClient();
    try {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } finally {
      client.destroy();
    }
    const r = await runCli([...global, 'verify']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toContain(`stream object ${streamObject} (${key}): missing from the bucket`);
    // Its stream cannot read back either: verify checks streams from what the objects hold.
    expect(r.stdout).toMatch(new RegExp(`stream \\d+: object ${streamObject} holding \\[\\d+, \\d+\\) cannot be read`));
    expect(r.stdout).toMatch(/problem\(s\)/);
  });

  it('verify finds a damaged object in place (same size, broken record) and the streams it breaks', async () => {
    const live = JSON.parse((await runCli([...global, '--json', 'verify'])).stdout) as { objects: { checked: number } };
    expect(live.objects.checked).toBeGreaterThan(0);
    const client = directClient();
    const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    // The largest object still in the bucket: the SSO or a stream object.
    const victim = [...(list.Contents ?? [])].sort((a, b) => (b.Size ?? 0) - (a.Size ?? 0))[0]!;
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: victim.Key! }));
    const bytes = await got.Body!.transformToByteArray();
    // The first record's magic byte of the first block (format: block header at position 0).
    bytes[0] = bytes[0]! ^ 0xff;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: victim.Key!, Body: bytes }));
    client.destroy();
    const r = await runCli([...global, 'verify']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(new RegExp(`object ${objectIdOf(victim.Key!)} \\(${victim.Key!.replace(/\//g, '\\/')}\\): .*ERR_FORMAT`));
    expect(r.stdout).toMatch(new RegExp(`stream \\d+: object ${objectIdOf(victim.Key!)} holding .* cannot be read`));
  });
});

describe('inspect a local file', () => {
  it('decodes footer, entries and records without any S3 option', async () => {
    const file = join(dir, 'object.bin');
    const payload = new Uint8Array(100).fill(7);
    writeFileSync(
      file,
      encodeObject([
        { records: [{ streamId: 9, epoch: 1, baseOffset: 10, count: 2, payload }, { streamId: 9, epoch: 1, baseOffset: 12, count: 3, payload }] },
        { records: [{ streamId: 11, epoch: 0, baseOffset: 0, count: 1, payload }] },
      ]),
    );
    const r = await runCli(['--json', 'inspect', file, '--records']);
    expect(r.code, r.stderr).toBe(0);
    const view = JSON.parse(r.stdout) as { source: string; entries: unknown[]; streams: unknown[]; records: unknown[] };
    expect(view.source).toBe('file');
    expect(view.entries).toHaveLength(2);
    expect(view.streams).toEqual([
      // Two record batches (issue #8: recordCount counts batches, not the 5 offsets they cover).
      { streamId: 9, startOffset: 10, endOffset: 15, entries: 1, records: 2, bytes: expect.any(Number) },
      { streamId: 11, startOffset: 0, endOffset: 1, entries: 1, records: 1, bytes: expect.any(Number) },
    ]);
    expect(view.records).toEqual([
      { streamId: 9, epoch: 1, baseOffset: 10, count: 2, payloadSize: 100 },
      { streamId: 9, epoch: 1, baseOffset: 12, count: 3, payloadSize: 100 },
      { streamId: 11, epoch: 0, baseOffset: 0, count: 1, payloadSize: 100 },
    ]);
    const text = await runCli(['inspect', file]);
    expect(text.stdout).toContain('index entries:');
    // A corrupt file: one line naming the file and the position.
    writeFileSync(file, new Uint8Array(80));
    const bad = await runCli(['inspect', file]);
    expectOneLineError(bad, 1, file, 'ERR_FORMAT_FOOTER_MAGIC');
  });
});

describe.concurrent('failures: one line on stderr, exit 2 for usage, 1 at runtime', () => {
  it('--part-size below the S3 minimum', async () => {
    const r = await runCli([...global, 'compact', '--part-size', '1KiB']);
    expectOneLineError(r, 2, 'option "--part-size"', 'must be at least 5MiB');
  });

  it('a library-checked option is named by its flag', async () => {
    const r = await runCli([...global, 'compact', '--bandwidth-limit', '1KiB']);
    expectOneLineError(r, 2, 'option "--bandwidth-limit"', 'at least 65536');
  });

  it('a memory limit no plan fits: the flag and a value that works, in human units', async () => {
    // Its own bucket: ids start at 1 in every metadata file (If-None-Match refused the session's bucket).
    const own = ['--endpoint', s3Endpoint(), '--bucket', await createTestBucket('memlimit'), '--metadata', join(dir, 'memlimit.db'), '--node-id', '4'];
    const ingest = await runCli([...own, 'ingest-sample', '--streams', '2', '--objects', '4', '--bytes', '12MiB', '--block-size', '1MiB']);
    expect(ingest.code, ingest.stderr).toBe(0);
    const r = await runCli([...own, 'plan', '--memory-limit', '5MiB', '--part-size', '5MiB', '--stream-split-size', '64MiB']);
    expectOneLineError(r, 1, 'no plan fits --memory-limit 5.00 MiB', '--part-size 5.00 MiB', /--memory-limit \d+MiB would work \[ERR_PLAN_MEMORY_LIMIT\]$/);
    expect(r.stderr).not.toContain('memoryLimit');
    const need = /--memory-limit (\d+)MiB would work/.exec(r.stderr)![1];
    const ok = await runCli([...own, 'plan', '--memory-limit', `${need}MiB`, '--part-size', '5MiB', '--stream-split-size', '64MiB']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('an unparsable size', async () => {
    const r = await runCli([...global, 'plan', '--memory-limit', '12 parsecs']);
    expectOneLineError(r, 2, 'option "--memory-limit"', '16MiB');
  });

  it('unknown command', async () => {
    const r = await runCli([...global, 'compat']);
    expectOneLineError(r, 2, "unknown command 'compat'", 'compact');
  });

  it('unknown option', async () => {
    const r = await runCli([...global, 'plan', '--no-such-flag']);
    expectOneLineError(r, 2, "unknown option '--no-such-flag'");
  });

  it('non-numeric --node-id', async () => {
    const r = await runCli([...global, '--node-id', 'abc', 'plan']);
    expectOneLineError(r, 2, 'option "--node-id"', '"abc"');
  });

  // Regression (issue #10): gc given an empty metadata file (what a failed ingest-sample left)
  // took every object of the bucket for an unknown leftover and deleted live data.
  it('gc with an empty or foreign metadata file deletes nothing and exits 1 with one line', async () => {
    const listKeys = async () =>
      ((await directClient().send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key).sort();
    const before = await listKeys();
    expect(before.length).toBeGreaterThan(0);
    const { SqliteMetadataStore } = await import('../../src/metadata/index.js');
    const empty = join(dir, 'empty.db');
    await new SqliteMetadataStore({ path: empty }).close();
    const args = ['--endpoint', s3Endpoint(), '--bucket', bucket, '--metadata', empty];
    for (const extra of [[], ['--dry-run'], ['--force']]) {
      const r = await runCli([...args, 'gc', '--safety-age', '0', ...extra]);
      expectOneLineError(r, 1, 'gc refused', 'metadata knows none of the', 'ERR_GC_METADATA_MISMATCH');
    }
    // Foreign: another bucket's metadata, knowing an id that is in this bucket with another size.
    const foreign = join(dir, 'foreign.db');
    const other = new SqliteMetadataStore({ path: foreign });
    await other.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    const id = objectIdOf(before[0]!);
    await other.commitStreamSetObject({ nodeId: 1, objectId: id, objectSize: 7, streamRanges: [{ streamId: 1, startOffset: 0, endOffset: 1 }], streamObjects: [], compactedObjectIds: [] });
    await other.close();
    const r = await runCli(['--endpoint', s3Endpoint(), '--bucket', bucket, '--metadata', foreign, 'gc', '--safety-age', '0']);
    expectOneLineError(r, 1, 'gc refused', 'metadata says 7', 'ERR_GC_METADATA_MISMATCH');
    expect(await listKeys()).toEqual(before);
  });

  it('quarantine list shows what a run quarantined (verify too); release takes it back', async () => {
    const { SqliteMetadataStore } = await import('../../src/metadata/index.js');
    const store = new SqliteMetadataStore({ path: join(dir, 'meta.db') });
    await store.quarantineObject({ objectId: 4242, code: 'ERR_FORMAT_BLOCK_MAGIC', reason: 'block magic 0x0 is not 0x5a (object x, byte 10)' });
    await store.close();
    const list = await runCli([...global, 'quarantine', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('object 4242');
    expect(list.stdout).toContain('[ERR_FORMAT_BLOCK_MAGIC]');
    expect((await runCli([...global, 'verify'])).stdout).toContain('quarantined: 1 object(s)');
    const released = await runCli([...global, 'quarantine', 'release', '4242']);
    expect(released.code, released.stderr).toBe(0);
    expect((await runCli([...global, '--json', 'quarantine', 'list'])).stdout.trim()).toBe('[]');
    expectOneLineError(await runCli([...global, 'quarantine', 'release', '4242']), 2, 'not quarantined');
  });

  it('a failed ingest-sample leaves no new metadata file behind', async () => {
    const path = join(dir, 'failed-ingest.db');
    const r = await runCli(['--endpoint', s3Endpoint(), '--bucket', `${bucket}-missing`.slice(0, 63), '--metadata', path, 'ingest-sample', '--objects', '1']);
    expect(r.code).toBe(1);
    const { existsSync } = await import('node:fs');
    expect(existsSync(path)).toBe(false);
  });

  it('a missing metadata file is not silently created', async () => {
    const r = await runCli(['--endpoint', s3Endpoint(), '--bucket', bucket, '--metadata', join(dir, 'nope.db'), 'gc']);
    expectOneLineError(r, 2, 'option "--metadata"', 'does not exist');
  });

  it('a missing bucket', async () => {
    const r = await runCli(['--endpoint', s3Endpoint(), '--bucket', `${bucket}-missing`.slice(0, 63), '--metadata', join(dir, 'meta.db'), 'plan']);
    expectOneLineError(r, 1, 'does not exist', '--create-bucket');
  });

  it('--create-bucket creates a missing bucket', async () => {
    const fresh = `${bucket}-new`.slice(0, 63);
    const args = ['--endpoint', s3Endpoint(), '--bucket', fresh, '--metadata', join(dir, 'fresh.db')];
    const r = await runCli([...args, '--create-bucket', '--json', 'ingest-sample', '--streams', '2', '--objects', '1', '--bytes', '2KiB']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { objects: unknown[] }).objects).toHaveLength(1);
    const plan = await runCli([...args, 'plan']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('nothing to compact');
  });

  it('an unreachable endpoint', async () => {
    const r = await runCli(['--endpoint', 'http://127.0.0.1:1', '--bucket', bucket, '--metadata', join(dir, 'meta.db'), 'plan']);
    expectOneLineError(r, 1, 'cannot reach S3 endpoint http://127.0.0.1:1', 'is it running?');
  });

  it('--log-level debug adds the stack trace', async () => {
    const r = await runCli(['--endpoint', 'http://127.0.0.1:1', '--bucket', bucket, '--metadata', join(dir, 'meta.db'), '--log-level', 'debug', 'plan']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr).find((l) => l.startsWith('error: '))).toContain('cannot reach S3 endpoint');
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  it('--help lists the commands and every option with its default', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['compact', 'plan', 'inspect', 'verify', 'gc', 'ingest-sample']) expect(top.stdout).toContain(`  ${c} `);
    expect(top.stdout).toContain('(default: "./meta.db"');
    const help = await runCli(['compact', '--help']);
    expect(help.code).toBe(0);
    const flat = help.stdout.replace(/\s+/g, ' ');
    for (const [flag, def] of [
      ['--memory-limit <size>', '200MiB'],
      ['--stream-split-size <size>', '8MiB'],
      ['--part-size <size>', '16MiB'],
      ['--max-objects-per-run <n>', '500'],
      ['--force-split-after <duration>', '2h'],
      ['--interval <duration>', '5m'],
      ['--threads <n>', '1'],
      ['--max-get-size <size>', '16MiB'],
    ] as const) {
      expect(flat).toMatch(new RegExp(`${flag.replace(/[<>]/g, '.')} .*?\\(default: ${def}, env: S3SC_`));
    }
    expect(flat).toContain('--node-id <id>');
    expect((await runCli(['help', 'gc'])).code).toBe(0);
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: s3-stream-compactor');
  });
});

describe('compact --watch', () => {
  it('serves metrics, runs on its interval and stops cleanly on SIGINT', async () => {
    const child = spawn(process.execPath, [CLI, ...global, '--metrics-port', '0', 'compact', '--watch', '--interval', '300ms'], { cwd: ROOT, env: cliEnv });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await waitFor(() => /metrics: (http:\/\/\S+)/.exec(stderr)?.[1], 15_000);
      // At least one (noop) run: everything was compacted above.
      await waitFor(() => (/nothing to compact/.test(stdout) ? true : undefined), 15_000);
      const body = await (await fetch(url)).text();
      expect(body).toMatch(/^s3sc_runs_total\{node="3",result="noop"\} [1-9]/m);
      expect(body).toMatch(/^s3sc_budget_limit_bytes\{node="3"\} 209715200$/m);
      expect(body).toMatch(/^s3sc_compaction_delay_seconds\{node="3"\} [0-9.]+$/m);
      child.kill('SIGINT');
      expect(await exited).toBe(130);
    } finally {
      child.kill('SIGKILL');
    }
  });

  // Regression (issue #11): without --metrics-port nothing held the process, and --watch exited
  // 0 after its first run (the schedule's timer is unref'd, as a library's must be).
  it('keeps running without a metrics port until SIGTERM, then exits 143 leaving no unfinished upload', async () => {
    const child = spawn(process.execPath, [CLI, ...global, 'compact', '--watch', '--interval', '2s'], { cwd: ROOT, env: cliEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const runs = () => (stdout.match(/ run \d+: /g) ?? []).length;
      await waitFor(() => (runs() >= 3 ? true : undefined), 60_000).catch((e: unknown) => {
        throw new Error(`${String(e)}; stdout: ${stdout}; stderr: ${stderr}`);
      });
      expect(child.exitCode).toBeNull();
      child.kill('SIGTERM');
      expect(await exited, stderr).toBe(143);
      const uploads = await directClient().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      expect(uploads.Uploads ?? []).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('two compactors of one node', () => {
  // Regression (issue #11): a second compact ran a whole compaction only to lose at commit.
  it('the second compact fails fast with one line naming the holder while the first runs', async () => {
    const proxy = await startFaultProxy(s3Endpoint());
    try {
      const sample = await runCli([...global, 'ingest-sample', '--streams', '3', '--objects', '3', '--bytes', '600KiB']);
      expect(sample.code, sample.stderr).toBe(0);
      const rule = proxy.addRule({ op: 'GetObject', skip: 3, times: Infinity, action: fault.delay(2_000) });
      const viaProxy = [...global];
      viaProxy[viaProxy.indexOf('--endpoint') + 1] = proxy.url;
      const first = spawn(process.execPath, [CLI, ...viaProxy, 'compact', '--no-progress'], { cwd: ROOT, env: cliEnv });
      let firstErr = '';
      first.stderr.on('data', (d: Buffer) => (firstErr += d.toString()));
      const firstExit = new Promise<number | null>((resolve) => first.once('exit', (code) => resolve(code)));
      try {
        await proxy.waitFor('GetObject', 4);
        const second = await runCli([...global, 'compact']);
        expectOneLineError(second, 1, 'another compactor holds node 3', 'pid', 'ERR_METADATA_NODE_BUSY');
        // Fast: refused at the start, not after a compaction (the first still waits on the proxy).
        expect(first.exitCode).toBeNull();
        rule.remove();
        expect(await firstExit, firstErr).toBe(0);
      } finally {
        first.kill('SIGKILL');
      }
    } finally {
      await proxy.close();
    }
  });
});

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for the CLI');
    await new Promise((r) => setTimeout(r, 50));
  }
}
