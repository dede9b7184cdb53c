/**
 * The command line on PostgreSQL metadata (issue #12): `--metadata postgres://…` for a whole
 * session (ingest-sample, plan, compact, verify, gc), and a clear line for a database that does
 * not answer.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresMetadataStore } from '../../src/metadata/index.js';
import { createTestBucket, s3Endpoint } from '../support/env.js';
import { fault, startFaultProxy } from '../support/fault-proxy.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../support/pg.js';
import { CLI, ROOT, cliEnv, ensureBuilt, runCli } from './helpers.js';

describe.skipIf(!pgAvailable)('CLI on PostgreSQL metadata', () => {
  let db: TestDatabase;
  let global: string[];

  beforeAll(async () => {
    await ensureBuilt();
    db = await createTestDatabase('cli');
    global = ['--endpoint', s3Endpoint(), '--bucket', await createTestBucket('pgcli'), '--metadata', db.url, '--node-id', '2'];
  }, 60_000);

  afterAll(async () => {
    await db?.drop();
  });

  it('ingest-sample, plan, compact, verify and gc work against postgres://', async () => {
    const ingest = await runCli([...global, 'ingest-sample', '--streams', '6', '--objects', '5', '--bytes', '2MiB']);
    expect(ingest.code, ingest.stderr).toBe(0);
    const plan = await runCli([...global, '--json', 'plan', '--stream-split-size', '256KiB']);
    expect(plan.code, plan.stderr).toBe(0);
    expect((JSON.parse(plan.stdout) as { compactedObjectIds: number[] }).compactedObjectIds).toHaveLength(5);
    const compact = await runCli([...global, '--json', 'compact', '--stream-split-size', '256KiB']);
    expect(compact.code, compact.stderr).toBe(0);
    const report = JSON.parse(compact.stdout) as { committed: boolean; compactedObjectIds: number[] };
    expect(report.committed).toBe(true);
    expect(report.compactedObjectIds).toHaveLength(5);
    const verify = await runCli([...global, 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/6 stream\(s\).*: OK/);
    const gc = await runCli([...global, '--json', 'gc', '--dry-run']);
    expect(gc.code, gc.stderr).toBe(0);
    expect((JSON.parse(gc.stdout) as { deletedObjects: string[] }).deletedObjects).toEqual([]);
  });

  it('compact --watch stops with one line and exit 1 when another compactor claims the node during its run', async () => {
    const ingest = await runCli([...global, 'ingest-sample', '--streams', '4', '--objects', '4', '--bytes', '1MiB', '--first-stream-id', '50']);
    expect(ingest.code, ingest.stderr).toBe(0);
    // Its writes are slow, so the claim below lands while its run is in flight.
    const proxy = await startFaultProxy(s3Endpoint());
    proxy.addRule({ op: ['PutObject', 'UploadPart', 'CompleteMultipartUpload'], times: Infinity, action: fault.delay(1_500) });
    const args = ['--endpoint', proxy.url, ...global.slice(2), '--log-level', 'info', 'compact', '--watch', '--interval', '1h', '--stream-split-size', '256KiB'];
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cliEnv });
    let stderr = '';
    const planned = new Promise<void>((resolve) =>
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/"msg":"planned"/.test(stderr)) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await planned;
      const other = await PostgresMetadataStore.open({ connectionString: db.url });
      await other.claimNode({ nodeId: 2, holder: 'another compactor' });
      await other.close();
      expect(await exited).toBe(1);
    } finally {
      child.kill('SIGKILL');
      await proxy.close();
    }
    const last = stderr.trim().split('\n').at(-1)!;
    expect(last).toMatch(/^error: stopped: commit refused, nothing changed: node 2 was claimed by another compactor \(another compactor, epoch \d+\).*\[ERR_METADATA_FENCED\]$/);
  }, 60_000);

  it('a database that does not answer: one line naming it, without its password', async () => {
    const r = await runCli([...global.slice(0, 4), '--metadata', 'postgres://u:secret@127.0.0.1:1/db', 'plan']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: open failed on PostgreSQL database postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db: cannot reach the server/);
    expect(r.stderr).not.toContain('secret');
  });
});
