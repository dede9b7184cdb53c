import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteMetadataStore } from '../../src/metadata/index.js';
import { expectedState, SO_STREAM, STREAMS, type CanonicalState } from './fixtures/commit-loop-model.js';
import { tempDir } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/commit-loop.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('meta-crash-'));
});
afterAll(() => cleanup());

interface RunResult {
  lines: string[];
  killed: boolean;
  code: number | null;
  stderr: string;
}

/** Runs the child; SIGKILLs it as soon as it prints `killAt` (driven by its output, not by time). */
function runChild(dbPath: string, last: number, killAt?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dbPath, String(last)], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let stderr = '';
    let killed = false;
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      lines.push(line);
      if (!killed && line === killAt) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    const rlClosed = new Promise<void>((r) => rl.once('close', r));
    child.once('error', reject);
    child.once('close', (code) => {
      void rlClosed.then(() => resolve({ lines, killed, code, stderr }));
    });
  });
}

/** objects / sso_ranges / streams rows with object ids replaced by their rank among SSOs / SOs. */
function canonicalState(path: string): CanonicalState {
  const db = new Database(path, { readonly: true });
  try {
    const objects = db.prepare('SELECT * FROM objects ORDER BY object_id').all() as Record<string, unknown>[];
    const label = new Map<unknown, string>();
    let sso = 0;
    let so = 0;
    for (const o of objects) label.set(o.object_id, o.kind === 'sso' ? `sso${++sso}` : `so${++so}`);
    const relabel = (id: unknown) => (id === null ? null : (label.get(id) ?? `unknown-${String(id)}`));
    const ranges = db.prepare('SELECT * FROM sso_ranges').all() as Record<string, unknown>[];
    const byLabel = (a: Record<string, unknown>, b: Record<string, unknown>) => {
      const [ka, kb] = [String(a.object_id), String(b.object_id)];
      const [na, nb] = [Number(ka.replace(/\D/g, '')), Number(kb.replace(/\D/g, ''))];
      return na - nb || (ka < kb ? 1 : ka > kb ? -1 : 0) || Number(a.stream_id ?? 0) - Number(b.stream_id ?? 0);
    };
    return {
      objects: objects.map((o) => ({ ...o, object_id: relabel(o.object_id), order_id: relabel(o.order_id) })).sort(byLabel),
      ranges: ranges.map((r) => ({ ...r, object_id: relabel(r.object_id) })).sort(byLabel),
      streams: db.prepare('SELECT * FROM streams ORDER BY stream_id').all() as Record<string, unknown>[],
    };
  } finally {
    db.close();
  }
}

function markers(lines: string[], kind: 'begin' | 'done'): number[] {
  return lines.filter((l) => l.startsWith(`${kind} `)).map((l) => Number(l.slice(kind.length + 1)));
}

describe('crash safety', () => {
  it('a writer SIGKILLed at many points always leaves the state of exactly k whole commits', async () => {
    const path = join(dir, 'crash.db');
    const setup = new SqliteMetadataStore({ path });
    for (let s = 1; s <= STREAMS; s++) await setup.createStream({ streamId: s, epoch: 0, startOffset: 0 });
    await setup.createStream({ streamId: SO_STREAM, epoch: 0, startOffset: 0 });
    await setup.close();

    let k = 0;
    let midCommitKills = 0;
    // Kill points relative to the commits already made: at start-up, right after a `begin`
    // (usually inside the commit), right after a `done`.
    const plan: ((k: number) => string)[] = [
      () => 'ready',
      (k) => `begin ${k + 1}`,
      (k) => `begin ${k + 5}`,
      (k) => `done ${k + 3}`,
      (k) => `begin ${k + 12}`,
      (k) => `begin ${k + 2}`,
      (k) => `done ${k + 8}`,
      (k) => `begin ${k + 20}`,
    ];
    for (const killAt of plan) {
      const marker = killAt(k);
      const run = await runChild(path, Number.MAX_SAFE_INTEGER, marker);
      expect(run.killed, `child never printed "${marker}"; stderr: ${run.stderr}`).toBe(true);
      const begins = markers(run.lines, 'begin');
      const dones = markers(run.lines, 'done');
      if (begins.length > 0 && begins.at(-1) !== dones.at(-1)) midCommitKills++;

      const raw = new Database(path);
      expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(raw.pragma('foreign_key_check')).toEqual([]);
      raw.close();

      const state = canonicalState(path);
      const after = state.objects.filter((o) => o.kind === 'sso').length;
      // Every acknowledged commit is there; nothing beyond the last one started.
      expect(after).toBeGreaterThanOrEqual(dones.at(-1) ?? k);
      expect(after).toBeLessThanOrEqual(begins.at(-1) ?? k);
      expect(after).toBeGreaterThanOrEqual(k);
      expect(state).toEqual(expectedState(after));
      k = after;
    }
    // The last run finishes normally.
    const final = await runChild(path, k + 5);
    expect(final.code, final.stderr).toBe(0);
    expect(final.lines.at(-1)).toBe('finished');
    k += 5;
    expect(canonicalState(path)).toEqual(expectedState(k));

    // And the store reads it back through the API.
    const store = new SqliteMetadataStore({ path });
    const ssos = await store.listStreamSetObjects({ nodeId: 1 });
    expect(ssos).toHaveLength(1);
    expect(ssos[0]!.ranges).toHaveLength(STREAMS);
    expect(ssos[0]!.ranges.every((r) => r.endOffset === 10 * k)).toBe(true);
    const sos = await store.listStreamObjects({ streamId: SO_STREAM });
    expect(sos.map((o) => [o.startOffset, o.endOffset])).toEqual(Array.from({ length: k }, (_, i) => [10 * i, 10 * i + 10]));
    expect(await store.listPendingDeletions({ nowMs: Number.MAX_SAFE_INTEGER })).toHaveLength(k - 1);
    await store.close();
    console.log(`crash test: ${plan.length} kills, ${midCommitKills} between a begin and its done, ${k} commits in the end`);
  }, 180_000);
});
