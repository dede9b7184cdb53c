/**
 * Read-only commands on read-only metadata (issue #11): plan, verify, inspect and `quarantine
 * list` open the store read-only and work when neither the file nor its folder is writable,
 * leaving the file byte-identical and no -wal/-shm behind; a writing command fails with one line.
 * chmod does not bind root, so as root the commands run as the unprivileged user `nobody`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { SqliteMetadataStore } from '../../src/metadata/index.js';
import { createTestBucket, s3Endpoint } from '../support/env.js';
import { CLI, cliEnv, ensureBuilt, runCli, type CliResult } from './helpers.js';

const asRoot = process.getuid?.() === 0;

/** The CLI as a user the folder's permissions bind. */
function runUnprivileged(args: string[]): CliResult {
  const cmd = asRoot ? ['runuser', '-u', 'nobody', '--', process.execPath, CLI, ...args] : [process.execPath, CLI, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: tmpdir(), env: { ...cliEnv, HOME: tmpdir() }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('read-only metadata', () => {
  let dir: string;
  let db: string;
  let global: string[];

  beforeAll(async () => {
    await ensureBuilt();
    const bucket = await createTestBucket('ro');
    // A folder `nobody` can enter (its parent, mkdtemp's, is 0700).
    const parent = mkdtempSync(join(tmpdir(), 's3sc-ro-'));
    chmodSync(parent, 0o755);
    dir = join(parent, 'meta');
    mkdirSync(dir);
    db = join(dir, 'meta.db');
    global = ['--endpoint', s3Endpoint(), '--bucket', bucket, '--metadata', db];
    for (const args of [
      ['ingest-sample', '--streams', '4', '--objects', '4', '--bytes', '256KiB'],
      ['compact', '--stream-split-size', '64KiB'],
      ['ingest-sample', '--streams', '2', '--objects', '2', '--bytes', '64KiB'],
    ]) {
      const r = await runCli([...global, ...args]);
      expect(r.code, r.stderr).toBe(0);
    }
    chmodSync(db, 0o444);
    chmodSync(dir, 0o555);
  }, 120_000);

  afterAll(() => {
    if (dir) {
      chmodSync(dir, 0o755);
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });

  it('plan, verify, inspect and quarantine list work on a read-only file in a read-only folder and change nothing', () => {
    const before = readFileSync(db);
    const plan = runUnprivileged([...global, 'plan', '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    expect((JSON.parse(plan.stdout) as { compactedObjectIds: number[] }).compactedObjectIds.length).toBeGreaterThan(0);
    const verify = runUnprivileged([...global, 'verify']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/: OK/);
    const inspect = runUnprivileged([...global, 'inspect', '1']);
    expect(inspect.code, inspect.stderr).toBe(0);
    const list = runUnprivileged([...global, 'quarantine', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(readFileSync(db).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['meta.db']);
  });

  it('a writing command on it fails with one line naming the file, and the file stays as it was', () => {
    const before = readFileSync(db);
    const r = runUnprivileged([...global, 'compact']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain(db);
    expect(lines[0]).toMatch(/read-only|readable and writable/);
    expect(readFileSync(db).equals(before)).toBe(true);
  });

  it('the store opened readOnly refuses every write with ERR_METADATA_READ_ONLY and never creates a file', async () => {
    const store = new SqliteMetadataStore({ path: db, readOnly: true });
    expect((await store.listStreams()).length).toBeGreaterThan(0);
    const err = await store.prepareObjectIds(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect((err as MetadataError).code).toBe('ERR_METADATA_READ_ONLY');
    await expect(store.createStream({ streamId: 999, epoch: 0, startOffset: 0 })).rejects.toMatchObject({ code: 'ERR_METADATA_READ_ONLY' });
    await store.close();
    const missing = join(tmpdir(), `s3sc-ro-missing-${process.pid}.db`);
    expect(() => new SqliteMetadataStore({ path: missing, readOnly: true })).toThrow(/does not exist/);
    expect(existsSync(missing)).toBe(false);
  });
});
