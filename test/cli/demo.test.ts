/**
 * `npm run demo`, the README's first command, end to end on a small load: the embedded S3
 * emulator, SQLite metadata on its own thread (SqliteThreadStore), ingest, compaction in
 * several iterations and the verification of every record. Nothing else ran the demo.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, ensureBuilt, ROOT } from './helpers.js';

const DEMO = join(ROOT, 'dist/demo/main.js');

describe('demo', () => {
  beforeAll(async () => {
    await ensureBuilt();
  }, 120_000);

  it('ingests, compacts in several iterations and verifies every record against what was written', async () => {
    const args = ['--mib', '24', '--streams', '200', '--objects', '24', '--memory-mib', '16', '--part-mib', '5', '--split-mib', '2'];
    const r = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [DEMO, ...args], { cwd: ROOT, env: cliEnv, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: stdout, err: stderr });
      });
    });
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.out).toMatch(/verified 200 streams, \d+ records, [\d.]+ MiB: identical to what was written/);
    expect(r.out).toMatch(/demo OK in/);
    const iterations = /iterations\s+(\d+)/.exec(r.out);
    expect(Number(iterations?.[1])).toBeGreaterThan(1);
  });
});
