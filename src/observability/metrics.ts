/**
 * A minimal metrics registry with Prometheus text exposition (format 0.0.4), written by hand:
 * counters and gauges, optional labels, and gauges computed at scrape time (`collect`).
 */

export type Labels = Record<string, string>;

interface MetricBase {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
}

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkLabels(metric: string, labels: Labels | undefined): void {
  for (const k of Object.keys(labels ?? {})) {
    if (!LABEL.test(k) || k.startsWith('__')) throw new TypeError(`metric ${metric}: invalid label name ${JSON.stringify(k)}`);
  }
}

abstract class Metric implements MetricBase {
  abstract readonly type: 'counter' | 'gauge';
  protected readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {
    if (!NAME.test(name)) throw new TypeError(`invalid metric name ${JSON.stringify(name)}`);
  }

  /** Current value for `labels` (0 when never set). */
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }

  /** Hook for scrape-time values. */
  async collect(): Promise<void> {}

  async render(): Promise<string> {
    await this.collect();
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ''} ${formatValue(v)}`);
    return lines.join('\n') + '\n';
  }
}

export class Counter extends Metric {
  readonly type = 'counter' as const;
  constructor(name: string, help: string, initialLabels: Labels[] = [{}]) {
    super(name, help);
    // Expose zero-valued series up front, so rate() sees the first increment.
    for (const l of initialLabels) this.values.set(labelKey(l), 0);
  }

  inc(by = 1, labels?: Labels): void {
    if (!(by >= 0) || !Number.isFinite(by)) throw new RangeError(`counter ${this.name}: increment must be a finite number >= 0, got ${by}`);
    checkLabels(this.name, labels);
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
}

export class Gauge extends Metric {
  readonly type = 'gauge' as const;
  constructor(
    name: string,
    help: string,
    private readonly collector?: (gauge: Gauge) => void | Promise<void>,
  ) {
    super(name, help);
  }

  set(value: number, labels?: Labels): void {
    checkLabels(this.name, labels);
    this.values.set(labelKey(labels), value);
  }

  /** Removes every series (a collector that reports "no value" clears it). */
  reset(): void {
    this.values.clear();
  }

  override async collect(): Promise<void> {
    if (this.collector) await this.collector(this);
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string, initialLabels?: Labels[]): Counter {
    return this.add(new Counter(name, help, initialLabels));
  }

  gauge(name: string, help: string, collect?: (gauge: Gauge) => void | Promise<void>): Gauge {
    return this.add(new Gauge(name, help, collect));
  }

  get(name: string): Counter | Gauge | undefined {
    return this.metrics.get(name) as Counter | Gauge | undefined;
  }

  /** Removes metrics (by name) from the registry. */
  remove(...names: string[]): void {
    for (const n of names) this.metrics.delete(n);
  }

  private add<M extends Metric>(m: M): M {
    if (this.metrics.has(m.name)) throw new TypeError(`metric ${m.name} is already registered`);
    this.metrics.set(m.name, m);
    return m;
  }

  /**
   * The Prometheus text exposition of every metric. A scrape-time collector that fails leaves
   * its metric out of this scrape (and is reported through `onCollectError`), never the scrape.
   */
  async render(onCollectError?: (name: string, err: unknown) => void): Promise<string> {
    const parts: string[] = [];
    for (const m of this.metrics.values()) {
      try {
        parts.push(await m.render());
      } catch (err) {
        onCollectError?.(m.name, err);
      }
    }
    return parts.join('');
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
