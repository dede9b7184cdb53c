import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from '../cli/helpers.js';

describe('actor threads that are terminated while they start', () => {
  // Regression (CI, test/cli/postgres.test.ts): the CLI process died with "FATAL ERROR:
  // v8::Module::IsGraphAsync must be used on an instantiated module". piscina require()s its
  // worker file; on Node 20 a thread terminated while require() instantiates an ES module aborts
  // the process, and closing a pool terminates threads that are still starting. The window is a
  // few milliseconds of each start, so this closes 150 three-thread pools at random moments of
  // their start: before the fix, each of 10 runs of it died.
  it('closing pools while their threads load the actor runtime never aborts the process', async () => {
    await ensureBuilt();
    const fixture = join(ROOT, 'test/runtime/fixtures/close-while-loading.mjs');
    const pool = join(ROOT, 'dist/actors/runtime/actor-pool.js');
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [fixture, pool, '150', '50'], { timeout: 100_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
      );
    });
    expect(run.stderr).not.toContain('FATAL ERROR');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('closed 150 pools');
  }, 120_000);
});
