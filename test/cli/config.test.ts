/**
 * Where option values come from (issue #11): the flag, then its S3SC_* variable, then the
 * --config file, then the default; a bad value names its source; --help says all of it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBucket, s3Endpoint } from '../support/env.js';
import { ensureBuilt, runCli } from './helpers.js';

let dir: string;
let bucket: string;
let db: string;

beforeAll(async () => {
  await ensureBuilt();
  bucket = await createTestBucket('cfg');
  dir = mkdtempSync(join(tmpdir(), 's3sc-cfg-'));
  db = join(dir, 'meta.db');
  const r = await runCli(['--endpoint', s3Endpoint(), '--bucket', bucket, '--metadata', db, 'ingest-sample', '--streams', '2', '--objects', '2', '--bytes', '64KiB']);
  expect(r.code, r.stderr).toBe(0);
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function config(name: string, values: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(values));
  return file;
}

async function planLimit(args: string[], env: NodeJS.ProcessEnv = {}, planArgs: string[] = []): Promise<number> {
  const r = await runCli([...args, '--json', 'plan', ...planArgs], { env });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { memoryLimit: number }).memoryLimit;
}

describe('option sources', () => {
  it('a config file gives every option, camelCase or kebab; a variable beats it; a flag beats both', async () => {
    const file = config('all.json', { endpoint: s3Endpoint(), bucket, metadata: db, 'memory-limit': '48MiB', partSize: '8MiB' });
    expect(await planLimit(['--config', file])).toBe(48 * 2 ** 20);
    expect(await planLimit(['--config', file], { S3SC_MEMORY_LIMIT: '40MiB' })).toBe(40 * 2 ** 20);
    expect(await planLimit(['--config', file], { S3SC_MEMORY_LIMIT: '40MiB' }, ['--memory-limit', '32MiB'])).toBe(32 * 2 ** 20);
    // The file itself may come from S3SC_CONFIG; a command's option another command lacks is ignored.
    const shared = config('shared.json', { endpoint: s3Endpoint(), bucket, metadata: db, watch: true, interval: '1m' });
    expect(await planLimit([], { S3SC_CONFIG: shared })).toBe(200 * 2 ** 20);
  });

  it('a bad value names the variable or the file it came from', async () => {
    const fromEnv = await runCli(['--endpoint', s3Endpoint(), '--bucket', bucket, '--metadata', db, 'plan'], { env: { S3SC_MEMORY_LIMIT: '12 parsecs' } });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr.trim()).toMatch(/^error: option "--memory-limit \(from S3SC_MEMORY_LIMIT\)": expected a size such as 16MiB/);
    const bad = config('bad.json', { 'memory-limit': '12 parsecs' });
    const fromFile = await runCli(['--config', bad, '--endpoint', s3Endpoint(), '--bucket', bucket, '--metadata', db, 'plan']);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr.trim()).toMatch(/^error: option "--memory-limit \(from the --config file\)"/);
  });

  it('an unknown key, a wrong type, a missing or broken file: one usage line naming the file', async () => {
    const cases: [string, RegExp][] = [
      [config('typo.json', { 'memroy-limit': '1MiB' }), /unknown option "memroy-limit"/],
      [config('type.json', { watch: 'yes' }), /"watch" must be true or false/],
      [config('array.json', [1, 2] as unknown as Record<string, unknown>), /expected a JSON object/],
      [join(dir, 'missing.json'), /the file does not exist/],
    ];
    writeFileSync(join(dir, 'broken.json'), '{"bucket": ');
    cases.push([join(dir, 'broken.json'), /not valid JSON/]);
    for (const [file, why] of cases) {
      const r = await runCli(['--config', file, 'compact']);
      expect(r.code, r.stderr).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`option "--config": ${file}: `);
      expect(lines[0]).toMatch(why);
    }
  });

  it('--help says where each value can come from', async () => {
    const r = await runCli(['compact', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--memory-limit <size>[\s\S]*env:\s+S3SC_MEMORY_LIMIT/);
    expect(r.stdout).toMatch(/--bucket <name>[\s\S]*env:\s+S3SC_BUCKET/);
    expect(r.stdout).toContain('--config <file>');
    expect(r.stdout).toMatch(/strongest first: the flag, its environment variable/);
  });
});
