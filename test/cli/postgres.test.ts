/**
 * The command line on PostgreSQL metadata (issue #12): `--metadata postgres://…` for a whole
 * session (ingest-sample, plan, compact, verify, gc), and a clear line for a database that does
 * not answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBucket, s3Endpoint } from '../support/env.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../support/pg.js';
import { ensureBuilt, runCli } from './helpers.js';

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

  it('a database that does not answer: one line naming it, without its password', async () => {
    const r = await runCli([...global.slice(0, 4), '--metadata', 'postgres://u:secret@127.0.0.1:1/db', 'plan']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: open failed on PostgreSQL database postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db: cannot reach the server/);
    expect(r.stderr).not.toContain('secret');
  });
});
