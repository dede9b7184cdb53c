/**
 * Runs the BUILT command line (`node dist/cli/main.js`), building it first when dist is missing
 * or older than src (a lock keeps parallel test files from building at once).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { testCredentials } from '../support/env.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist/cli/main.js');
const CACHE = join(ROOT, 'node_modules/.cache');
const STAMP = join(CACHE, 's3sc-cli-build.stamp');
const LOCK = join(CACHE, 's3sc-cli-build.lock');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (/\.(ts|mts|cts|mjs|cjs|js|json)$/.test(entry.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function stale(): boolean {
  if (!existsSync(CLI)) return true;
  const built = Math.max(statSync(CLI).mtimeMs, existsSync(STAMP) ? statSync(STAMP).mtimeMs : 0);
  return newestMtime(join(ROOT, 'src')) > built;
}

/** Builds dist with tsc when stale. A type error elsewhere still emits: that is reported, not fatal. */
export async function ensureBuilt(): Promise<void> {
  mkdirSync(CACHE, { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (!stale()) return;
    try {
      mkdirSync(LOCK);
    } catch {
      // Another file builds: wait for it (a lock older than 3 min is a leftover).
      const st = statSync(LOCK, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > 180_000) rmdirSync(LOCK, { recursive: false });
      if (Date.now() > deadline) throw new Error('timed out waiting for another build of dist');
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    try {
      const started = Date.now();
      const r = spawnSync(
        process.execPath,
        [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
        { cwd: ROOT, encoding: 'utf8', timeout: 170_000 },
      );
      if (!existsSync(CLI)) throw new Error(`build of dist failed:\n${r.stdout}\n${r.stderr}`);
      if (r.status !== 0) console.warn(`[cli tests] tsc reported errors (dist was emitted anyway):\n${r.stdout.slice(0, 4000)}`);
      writeFileSync(STAMP, '');
      const t = new Date(started);
      utimesSync(STAMP, t, t);
      return;
    } finally {
      try {
        rmdirSync(LOCK);
      } catch {
        // removed already
      }
    }
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const cliEnv: NodeJS.ProcessEnv = {
  ...process.env,
  AWS_ACCESS_KEY_ID: testCredentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: testCredentials.secretAccessKey,
  AWS_REGION: 'us-east-1',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  NO_COLOR: '1',
};
// Every option has an S3SC_* variable: none of the caller's may leak into a test.
for (const k of Object.keys(cliEnv)) if (k.startsWith('S3SC_')) delete cliEnv[k];

export function runCli(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: ROOT, env: { ...cliEnv, ...opts.env }, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}

/** Non-empty lines of a stream. */
export function lines(s: string): string[] {
  return s.split('\n').filter((l) => l.trim().length > 0);
}
