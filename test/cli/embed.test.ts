/**
 * Issue #11, "a quiet library": embedded in a host, the library writes nothing to stdout (it logs
 * only through a logger the host passes), and the SDK's Node-version warning stays out of the
 * worker threads it starts, without the host setting anything in its own environment.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBucket, s3Endpoint } from '../support/env.js';
import { ROOT, ensureBuilt } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/embed-child.mjs', import.meta.url));
let dir: string;
beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 's3sc-embed-'));
}, 200_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('embedded in a host', () => {
  it('a compaction prints nothing on stdout and no SDK warning from the worker threads', async () => {
    const bucket = await createTestBucket('embed');
    const env = { ...process.env, LOG_LEVEL: 'debug' } as NodeJS.ProcessEnv;
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    const cfg = JSON.stringify({ bucket, endpoint: s3Endpoint(), metadata: join(dir, 'meta.db') });
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(process.execPath, [CHILD, cfg], { cwd: ROOT, env, timeout: 120_000 }, (err, stdout, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve({ stdout, stderr }))),
    );
    expect(stderr).toContain('committed=true');
    expect(stdout).toBe('');
    // The host's own thread may warn (its environment is its own); the workers must not: one
    // warning at most, never one per thread.
    expect((stderr.match(/NodeVersionSupportWarning/g) ?? []).length).toBeLessThanOrEqual(1);
  }, 180_000);
});
