/**
 * Observability in-process: attachMetrics on a real Compactor (the run's S3 server, worker
 * threads), scraped over HTTP from startMetricsServer; the registry's text exposition.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { Counter, Registry } from 'prom-client';
import { filter, firstValueFrom } from 'rxjs';
import { attachMetrics, createLogger, METRIC_NAMES, MetricsRegistry, startMetricsServer, type MetricsServer } from '../../src/observability/index.js';
import { createTestNode, type TestNode } from '../support/node.js';

let node: TestNode | undefined;
let server: MetricsServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  await node?.close();
  node = undefined;
});

/** Sample values by series (`name{labels}`) from a scrape. */
function parse(body: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

interface Family {
  name: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string> }[];
}
/** A Prometheus text-format parser (not ours): the exposition must be valid for it. */
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

let lastBody = '';
async function scrape(s: MetricsServer): Promise<Map<string, number>> {
  const res = await fetch(s.url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
  lastBody = await res.text();
  return parse(lastBody);
}

describe('attachMetrics + startMetricsServer', () => {
  it('counts runs, bytes and iterations from a real compactor and computes the delay on scrape', async () => {
    node = await createTestNode('metrics', { streams: [1, 2, 3] });
    const hourAgo = Date.now() - 3_600_000;
    await node.writeStreams({ 1: { n: 20, size: 1000 }, 2: { n: 5, size: 500 } }, { dataTimeMs: hourAgo, blockSize: 4096 });
    await node.writeStreams({ 1: { n: 20, size: 1000 }, 3: { n: 5, size: 500 } }, { dataTimeMs: hourAgo + 60_000, blockSize: 4096 });
    await node.writeStreams({ 2: { n: 10, size: 1000 }, 3: { n: 5, size: 500 } }, { blockSize: 4096 });
    // A tiny memory limit: several iterations.
    const compactor = node.compactor({ memoryLimit: 24 * 1024, streamSplitSize: 4096 });
    const { registry, detach } = attachMetrics(compactor, node.metadata, node.nodeId);
    server = await startMetricsServer({ port: 0, registry });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    const before = await scrape(server);
    expect(before.get('s3sc_compaction_delay_seconds{node="1"}')).toBeGreaterThanOrEqual(3600);
    expect(before.get('s3sc_compaction_delay_seconds{node="1"}')).toBeLessThan(3700);
    expect(before.get('s3sc_stream_set_objects{node="1"}')).toBe(3);
    expect(before.get('s3sc_runs_total{node="1",result="committed"}')).toBe(0);
    expect(before.get('s3sc_bytes_read_total{node="1"}')).toBe(0);
    expect(before.get('s3sc_budget_limit_bytes{node="1"}')).toBe(24 * 1024);
    expect(before.get('s3sc_budget_in_use_bytes{node="1"}')).toBe(0);

    const sawReaderGets = firstValueFrom(
      compactor.events$.pipe(filter((e) => e.type === 's3.requests' && e.requests.filter((r) => r.operation === 'GetObject').length > 1)),
    );
    const report = await compactor.compactOnce();
    expect(report.committed, JSON.stringify(report.skipped)).toBe(true);
    // Worker threads post their S3 request samples in batches: the reader's GETs arrive by an event.
    await sawReaderGets;
    const after = await scrape(server);
    expect(after.get('s3sc_runs_total{node="1",result="committed"}')).toBe(1);
    expect(after.get('s3sc_runs_total{node="1",result="failed"}')).toBe(0);
    expect(after.get('s3sc_bytes_read_total{node="1"}')).toBe(report.bytesRead);
    // No restart: the bytes made durable part by part add up to the outputs' sizes.
    expect(report.restarts).toBe(0);
    expect(after.get('s3sc_bytes_written_total{node="1"}')).toBe(report.bytesWritten);
    expect(after.get('s3sc_iterations_total{node="1"}')).toBe(report.iterations);
    expect(report.iterations).toBeGreaterThan(1);
    expect(after.get('s3sc_restarts_total{node="1"}')).toBe(0);
    expect(after.get('s3sc_aborted_uploads_total{node="1"}')).toBe(0);
    expect(after.get('s3sc_budget_in_use_bytes{node="1"}')).toBe(0);
    expect(after.get('s3sc_budget_peak_bytes{node="1"}')).toBe(report.peakBudgetBytes);

    // Valid exposition for a real parser; histograms, process metrics, the node label everywhere.
    const families = parsePrometheus(lastBody);
    const byName = new Map(families.map((f) => [f.name, f]));
    for (const name of METRIC_NAMES) expect(byName.has(name), name).toBe(true);
    for (const f of families.filter((f) => f.name.startsWith('s3sc_') && f.type !== 'HISTOGRAM')) {
      for (const m of f.metrics) expect(m.labels?.node, f.name).toBe('1');
    }
    expect(byName.get('s3sc_run_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(byName.get('s3sc_s3_request_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(after.get('s3sc_run_duration_seconds_count{node="1",result="committed"}')).toBe(1);
    // Requests of every thread: the planner's and reader's GETs, the uploader's parts or PUTs.
    expect(after.get('s3sc_s3_request_duration_seconds_count{node="1",operation="GetObject"}')).toBeGreaterThan(0);
    expect(byName.get('process_cpu_seconds_total')?.type).toBe('COUNTER');
    expect(byName.has('nodejs_eventloop_lag_seconds')).toBe(true);
    // Regression (issue #11): the merged SSO keeps the oldest dataTimeMs of what it replaced, and
    // the delay kept growing after a full compaction. It counts only SSOs waiting for compaction.
    const ssoLeft = report.newObjectId >= 0;
    expect(after.get('s3sc_stream_set_objects{node="1"}')).toBe(ssoLeft ? 1 : 0);
    expect(after.get('s3sc_compaction_delay_seconds{node="1"}')).toBe(0);
    // A new ingest waits again: the delay is its age.
    await node.writeStreams({ 1: { n: 1, size: 100 } }, { dataTimeMs: Date.now() - 120_000 });
    const waiting = await scrape(server);
    expect(waiting.get('s3sc_compaction_delay_seconds{node="1"}')).toBeGreaterThanOrEqual(120);
    expect(waiting.get('s3sc_compaction_delay_seconds{node="1"}')).toBeLessThan(3600);

    expect(after.get('s3sc_last_run_duration_seconds{node="1",result="committed"}')).toBeCloseTo(report.durationMs / 1000, 3);
    const idle = await compactor.compactOnce();
    const noop = await scrape(server);
    expect(noop.get('s3sc_runs_total{node="1",result="noop"}')).toBe(1);
    // Every run has its duration, labelled by outcome (issue #11: only committed runs had one).
    expect(noop.get('s3sc_last_run_duration_seconds{node="1",result="noop"}')).toBeCloseTo(idle.durationMs / 1000, 3);
    expect(noop.get('s3sc_run_duration_seconds_count{node="1",result="noop"}')).toBe(1);
    expect(noop.get('s3sc_bytes_read_total{node="1"}')).toBe(report.bytesRead);

    // Detach removes the compactor's metrics: a new compactor can attach to the same registry.
    detach();
    await compactor.close();
    const gone = await scrape(server);
    expect([...gone.keys()].some((k) => k.startsWith('s3sc_'))).toBe(false);
    expect(gone.has('process_cpu_seconds_total')).toBe(true);
    await node.verify();
  });

  it('counts a failed run, and a failing collector leaves its metric out, not the scrape', async () => {
    node = await createTestNode('metrics-fail', { streams: [1] });
    await node.writeStreams({ 1: { n: 3, size: 100 } });
    await node.writeStreams({ 1: { n: 3, size: 100 } });
    const compactor = node.compactor();
    const errors: string[] = [];
    // A host's own registry: no default metrics are added to it.
    const host = new Registry();
    const { registry } = attachMetrics(compactor, node.metadata, node.nodeId, { registry: host, onCollectError: (name) => errors.push(name) });
    expect(registry).toBe(host);
    // Metadata goes away under the compactor: the run fails.
    await node.metadata.close();
    await expect(compactor.compactOnce()).rejects.toThrow();
    const values = parse(await registry.metrics());
    expect(values.get('s3sc_runs_total{node="1",result="failed"}')).toBe(1);
    expect(values.get('s3sc_last_run_duration_seconds{node="1",result="failed"}')).toBeGreaterThan(0);
    expect(values.has('s3sc_compaction_delay_seconds{node="1"}')).toBe(false);
    expect(errors).toContain('s3sc_compaction_delay_seconds');
    expect([...values.keys()].some((k) => k.startsWith('process_'))).toBe(false);
    await compactor.close();
  });

  it('answers 404 elsewhere and 405 for other methods, and closes', async () => {
    const registry = new MetricsRegistry();
    new Counter({ name: 'x_total', help: 'x', registers: [registry] }).inc(2);
    server = await startMetricsServer({ port: 0, registry });
    expect(await (await fetch(server.url)).text()).toContain('x_total 2');
    expect((await fetch(server.url.replace('/metrics', '/'))).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
    const url = server.url;
    await server.close();
    server = undefined;
    await expect(fetch(url)).rejects.toThrow();
  });
});

describe('createLogger (pino-pretty on a terminal)', () => {
  it('prints one human line per entry, an error as its code and message', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'pretty', color: false, destination: { write: (l: string) => lines.push(l) } });
    log.warn({ runId: 3, err: Object.assign(new Error('boom'), { code: 'ERR_X' }) }, 'iteration failed');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: iteration failed .*"runId":3/);
    expect(lines[0]).toContain('ERR_X: boom');
    expect(lines[0]).not.toContain('    at ');
  });
});
