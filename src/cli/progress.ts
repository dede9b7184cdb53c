/**
 * The one progress display of every long command (compact, verify, ingest-sample, gc, the demo):
 * a cli-progress bar on stderr when it is a terminal, with log lines printed above the bar, never
 * through it. Without a terminal (or with --json) there is no bar: output stays line-oriented.
 */
import cliProgress from 'cli-progress';
import type { LogSink } from '../observability/logger.js';
import { humanBytes } from '../util/units.js';

export interface ProgressOptions {
  /** Shown before the bar, e.g. 'compacting'. */
  label: string;
  /** 'bytes': value and total in binary units, rate in MiB/s; 'items': plain counts. */
  unit: 'bytes' | 'items';
}

/** Extra text after the counts, e.g. 'iteration 2/5'. */
export type ProgressDetail = string;

export interface ProgressBar {
  start(total: number, detail?: ProgressDetail): void;
  /** `value` undefined: the detail changes, the count stays. */
  update(value: number | undefined, detail?: ProgressDetail): void;
  stop(): void;
}

const NO_BAR: ProgressBar = { start() {}, update() {}, stop() {} };

interface Out {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Owns a command's stderr: the logger writes through `log` (a LogSink), and a bar started by
 * `progress()` keeps those lines above itself.
 */
export class Terminal implements LogSink {
  readonly isTTY: boolean;
  private multi: cliProgress.MultiBar | undefined;

  constructor(
    private readonly out: Out = process.stderr,
    /** False: never a bar (--json, --no-progress). */
    private readonly barsAllowed = true,
  ) {
    this.isTTY = out.isTTY === true;
  }

  /** A log line: above the bar while one shows, straight to the stream otherwise. */
  write(chunk: string): void {
    if (this.multi) this.multi.log(chunk.endsWith('\n') ? chunk : `${chunk}\n`);
    else this.out.write(chunk);
  }

  /** A bar, or one that shows nothing when there is no terminal. One at a time. */
  progress(opts: ProgressOptions): ProgressBar {
    if (!this.barsAllowed || !this.isTTY) return NO_BAR;
    return new Bar(this, opts, this.out);
  }

  /** @internal */
  attach(multi: cliProgress.MultiBar): void {
    this.multi = multi;
  }

  /** @internal */
  detach(multi: cliProgress.MultiBar): void {
    if (this.multi === multi) this.multi = undefined;
  }
}

interface BarParams {
  progress: number;
  eta: number;
  value: number;
  total: number;
}

function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return '-';
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)}h${String(Math.round((seconds % 3600) / 60)).padStart(2, '0')}m`;
  if (seconds >= 60) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.ceil(seconds)}s`;
}

/**
 * One line of at most `columns - 1` characters: `label [bar] 42% counts rate ETA 3s | detail`.
 * The bar takes the width left (up to 40); when the line is too narrow the percentage goes
 * first (the bar shows it), then the detail, then the bar.
 */
export function formatBarLine(label: string, columns: number, p: BarParams, payload: Record<string, string>): string {
  const width = Math.max(1, columns - 1);
  const pct = `${Math.floor(p.progress * 100)}% `;
  const counts = `${payload.counts} ${payload.rate} ETA ${eta(p.eta)}`;
  const detail = payload.detail ? ` | ${payload.detail}` : '';
  for (const [head, tail, min] of [
    [pct + counts, detail, 15],
    [counts, detail, 8],
    [pct + counts, '', 8],
    [counts, '', 5],
  ] as const) {
    const room = width - label.length - head.length - tail.length - 4;
    if (room >= min) {
      const size = Math.min(40, room);
      const done = Math.round(p.progress * size);
      return `${label} [${'█'.repeat(done)}${'░'.repeat(size - done)}] ${head}${tail}`;
    }
  }
  return `${label} ${pct}${counts}`.slice(0, width);
}

/** `23.1/64.2 MiB` when both are in one unit, `512 KiB/1.20 GiB` otherwise. */
export function byteCounts(value: number, total: number): string {
  const v = humanBytes(value);
  const t = humanBytes(total);
  const unit = t.slice(t.indexOf(' '));
  return v.endsWith(unit) ? `${v.slice(0, -unit.length)}/${t}` : `${v}/${t}`;
}

/** `38 MiB/s`, `1.5 MiB/s`, `900 KiB/s`. */
function byteRate(perSecond: number): string {
  if (perSecond < 1024 * 1024) return `${Math.round(perSecond / 1024)} KiB/s`;
  const mib = perSecond / (1024 * 1024);
  return `${mib >= 10 ? Math.round(mib) : mib.toFixed(1)} MiB/s`;
}

class Bar implements ProgressBar {
  private multi: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private total = 1;
  private value = 0;
  private t0 = 0;
  private detail = '';

  constructor(
    private readonly terminal: Terminal,
    private readonly opts: ProgressOptions,
    private readonly out: Out,
  ) {}

  start(total: number, detail: ProgressDetail = ''): void {
    this.stop();
    this.total = Math.max(1, total);
    this.value = 0;
    this.t0 = performance.now();
    this.detail = detail;
    const label = this.opts.label;
    this.multi = new cliProgress.MultiBar(
      {
        // Read at every frame: a resized terminal gets a line that fits.
        format: (_o: unknown, params: BarParams, payload: Record<string, string>) => formatBarLine(label, this.out.columns || 80, params, payload),
        stream: this.out as NodeJS.WritableStream,
        hideCursor: true,
        clearOnComplete: true,
        // Lines fit by construction; cli-progress also cuts them to the width.
        linewrap: true,
        fps: 10,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    this.terminal.attach(this.multi);
    this.bar = this.multi.create(this.total, 0, this.payload(0));
  }

  update(value: number | undefined, detail?: ProgressDetail): void {
    if (detail !== undefined) this.detail = detail;
    if (value !== undefined) this.value = value;
    this.bar?.update(Math.min(this.value, this.total), this.payload(this.value));
  }

  stop(): void {
    const multi = this.multi;
    if (!multi) return;
    this.multi = undefined;
    this.bar = undefined;
    // Lines logged since the last frame are printed before the bar goes.
    multi.update();
    multi.stop();
    this.terminal.detach(multi);
  }

  private payload(value: number): Record<string, string> {
    const seconds = (performance.now() - this.t0) / 1000;
    const rate = seconds > 0.2 ? value / seconds : 0;
    const bytes = this.opts.unit === 'bytes';
    return {
      counts: bytes ? byteCounts(value, this.total) : `${value}/${this.total}`,
      rate: bytes ? byteRate(rate) : `${rate >= 10 ? Math.round(rate) : rate.toFixed(1)}/s`,
      detail: this.detail,
    };
  }
}
