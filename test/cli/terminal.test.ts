/**
 * The progress display on a real terminal: the built CLI runs `compact --log-level info` inside
 * tmux at 80 columns, and the screen is read while it runs. Log lines must appear above one
 * intact bar, never through it; no line may be wider than the terminal; the bar goes away and a
 * correct summary stays. Plus the line layout at many widths (pure).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { byteCounts, formatBarLine } from '../../src/cli/progress.js';
import { createTestBucket, s3Endpoint } from '../support/env.js';
import { CLI, cliEnv, ensureBuilt, runCli } from './helpers.js';

const tmux = spawnSync('tmux', ['-V'], { encoding: 'utf8' });
const haveTmux = tmux.status === 0;
if (!haveTmux) console.warn('[terminal.test] tmux is not installed: the terminal test is SKIPPED (apt-get install tmux)');

describe('formatBarLine', () => {
  it('fits every width from 20 to 200 columns, dropping the percentage, then the detail, then the bar', () => {
    const payload = { counts: byteCounts(23.1 * 2 ** 20, 128 * 2 ** 20), rate: '38 MiB/s', detail: 'iter 3/9, wrote 16.0 MiB' };
    for (let columns = 20; columns <= 200; columns++) {
      const line = formatBarLine('compacting', columns, { progress: 0.18, eta: 125, value: 1, total: 2 }, payload);
      expect(line.length, `${columns}: ${line}`).toBeLessThanOrEqual(columns - 1);
      expect(line.startsWith('compacting')).toBe(true);
    }
    const wide = formatBarLine('compacting', 200, { progress: 0.5, eta: 3, value: 1, total: 2 }, payload);
    expect(wide).toMatch(/^compacting \[█{20}░{20}\] 50% 23\.1\/128 MiB 38 MiB\/s ETA 3s \| iter 3\/9, wrote 16\.0 MiB$/);
    // At 80 columns the bar and the detail both stay.
    expect(formatBarLine('compacting', 80, { progress: 0.5, eta: 3, value: 1, total: 2 }, payload)).toMatch(/\[█+░+\].*iter 3\/9/);
    expect(byteCounts(512 * 1024, 3 * 2 ** 30)).toBe('512 KiB/3.00 GiB');
  });
});

describe.skipIf(!haveTmux)('compact in tmux at 80 columns', () => {
  let dir: string;
  let global: string[];
  const socket = `s3sc-test-${process.pid}`;
  const tm = (...args: string[]) => spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    await ensureBuilt();
    const bucket = await createTestBucket('tty');
    dir = mkdtempSync(join(tmpdir(), 's3sc-tty-'));
    global = ['--endpoint', s3Endpoint(), '--bucket', bucket, '--metadata', join(dir, 'meta.db')];
    const r = await runCli([...global, 'ingest-sample', '--streams', '40', '--objects', '24', '--bytes', '72MiB', '--record-size', '64KiB'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
  }, 180_000);

  afterAll(() => {
    tm('kill-server');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows log lines above one intact bar, no line wider than 80, then the summary', async () => {
    const script = join(dir, 'run.sh');
    const env = Object.entries({ ...cliEnv, TERM: 'xterm-256color' })
      .filter(([k, v]) => v !== undefined && /^[A-Z_][A-Z0-9_]*$/.test(k))
      .map(([k, v]) => `export ${k}='${String(v).replace(/'/g, `'\\''`)}'`);
    const args = [...global, '--log-level', 'info', 'compact', '--memory-limit', '8MiB', '--part-size', '5MiB', '--stream-split-size', '8MiB'];
    writeFileSync(script, `${env.join('\n')}\n'${process.execPath}' '${CLI}' ${args.map((a) => `'${a}'`).join(' ')}\necho "EXIT $?"\nexec sleep 600\n`);
    const started = tm('new-session', '-d', '-s', 'c', '-x', '80', '-y', '50', `bash ${script}`);
    expect(started.status, started.stderr).toBe(0);

    const screens: string[][] = [];
    const deadline = Date.now() + 120_000;
    let final: string[] = [];
    while (Date.now() < deadline) {
      const cap = tm('capture-pane', '-p', '-t', 'c');
      const rows = cap.stdout.split('\n');
      screens.push(rows);
      if (rows.some((l) => /^EXIT \d+/.test(l))) {
        final = rows;
        break;
      }
      // Screen sampling, not synchronisation: the loop ends on the EXIT line or the deadline.
      await new Promise((r) => setTimeout(r, 40));
    }
    expect(final.length, `no EXIT line within the deadline; last screen:\n${screens.at(-1)?.join('\n')}`).toBeGreaterThan(0);

    const barRow = (rows: string[]) => rows.findIndex((l) => /^compacting \[[█░]+\]/.test(l));
    const withBar = screens.filter((rows) => barRow(rows) >= 0);
    expect(withBar.length, 'the bar was never on screen').toBeGreaterThan(0);
    for (const rows of screens) {
      // One bar at most, never broken up, every line within 80 columns.
      expect(rows.filter((l) => l.includes('compacting [')).length).toBeLessThanOrEqual(1);
      for (const l of rows) expect(l.length, l).toBeLessThanOrEqual(80);
      const b = barRow(rows);
      if (b < 0) continue;
      expect(rows[b]).toMatch(/^compacting \[[█░]+\] (\d+% )?[\d.]+( B| [KMG]iB)?\/[\d.]+ [KMG]iB \d[\d.]* [KM]iB\/s ETA \S+/);
      // Everything the logger printed is above the bar; nothing below it but blank rows.
      expect(rows.slice(b + 1).every((l) => l.trim() === ''), rows.join('\n')).toBe(true);
      for (const l of rows.slice(0, b)) expect(l).not.toContain('compacting [');
    }
    // The iteration and the bytes made durable ride on the bar.
    expect(withBar.some((rows) => /\| iter \d+\/\d+, wrote [\d.]+ (B|[KMG]iB)$/.test(rows[barRow(rows)]!))).toBe(true);
    // A log line printed while the bar showed: above it.
    expect(withBar.some((rows) => rows.slice(0, barRow(rows)).some((l) => l.includes('INFO') && l.includes('planned')))).toBe(true);

    const text = final.join('\n');
    expect(text).toContain('EXIT 0');
    expect(barRow(final)).toBe(-1);
    expect(text).toMatch(/INFO.*committed/);
    expect(text).toMatch(/committed: 24 SSO\(s\) compacted into SSO \d+ and \d+ stream object\(s\)/);
    expect(text).toMatch(/read 72\.\d MiB, wrote 72\.\d MiB in [\d.]+ s/);
  }, 200_000);
});
