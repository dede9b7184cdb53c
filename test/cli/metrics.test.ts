/**
 * Observability in-process: attachMetrics on a real Compactor (the run's S3 server, worker
 * threads), scraped over HTTP from startMetricsServer; the registry's text exposition.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { attachMetrics, Counter, formatLogLine, MetricsRegistry, startMetricsServer, type MetricsServer } from '../../src/observability/index.js';
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

async function scrape(s: MetricsServer): Promise<Map<string, number>> {
  const res = await fetch(s.url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
  return parse(await res.text());
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
    expect(before.get('s3sc_runs_total{result="committed"}')).toBe(0);
    expect(before.get('s3sc_bytes_read_total')).toBe(0);
    expect(before.get('s3sc_budget_limit_bytes')).toBe(24 * 1024);
    expect(before.get('s3sc_budget_in_use_bytes')).toBe(0);

    const report = await compactor.compactOnce();
    expect(report.committed, JSON.stringify(report.skipped)).toBe(true);
    const after = await scrape(server);
    expect(after.get('s3sc_runs_total{result="committed"}')).toBe(1);
    expect(after.get('s3sc_runs_total{result="failed"}')).toBe(0);
    expect(after.get('s3sc_bytes_read_total')).toBe(report.bytesRead);
    expect(after.get('s3sc_bytes_written_total')).toBe(report.bytesWritten);
    expect(after.get('s3sc_iterations_total')).toBe(report.iterations);
    expect(report.iterations).toBeGreaterThan(1);
    expect(after.get('s3sc_restarts_total')).toBe(report.restarts);
    expect(after.get('s3sc_aborted_uploads_total')).toBe(0);
    expect(after.get('s3sc_budget_in_use_bytes')).toBe(0);
    expect(after.get('s3sc_budget_peak_bytes')).toBe(report.peakBudgetBytes);
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

    expect(after.get('s3sc_last_run_duration_seconds{result="committed"}')).toBeCloseTo(report.durationMs / 1000, 3);
    const idle = await compactor.compactOnce();
    const noop = await scrape(server);
    expect(noop.get('s3sc_runs_total{result="noop"}')).toBe(1);
    // Every run has its duration, labelled by outcome (issue #11: only committed runs had one).
    expect(noop.get('s3sc_last_run_duration_seconds{result="noop"}')).toBeCloseTo(idle.durationMs / 1000, 3);
    expect(noop.get('s3sc_bytes_read_total')).toBe(report.bytesRead);

    detach();
    await compactor.close();
    // After detach, nothing changes.
    expect((await scrape(server)).get('s3sc_runs_total{result="committed"}')).toBe(1);
    await node.verify();
  });

  it('counts a failed run', async () => {
    node = await createTestNode('metrics-fail', { streams: [1] });
    await node.writeStreams({ 1: { n: 3, size: 100 } });
    await node.writeStreams({ 1: { n: 3, size: 100 } });
    const compactor = node.compactor();
    const { registry } = attachMetrics(compactor, node.metadata, node.nodeId);
    // Metadata goes away under the compactor: the run fails.
    await node.metadata.close();
    await expect(compactor.compactOnce()).rejects.toThrow();
    const values = parse(await registry.render());
    expect(values.get('s3sc_runs_total{result="failed"}')).toBe(1);
    expect(values.get('s3sc_last_run_duration_seconds{result="failed"}')).toBeGreaterThan(0);
    // The delay collector fails on a closed store: that metric is left out, the scrape still works.
    const errors: string[] = [];
    const body = await registry.render((name) => errors.push(name));
    expect(body).toContain('s3sc_runs_total');
    expect(errors).toContain('s3sc_compaction_delay_seconds');
  });

  it('answers 404 elsewhere and 405 for other methods, and closes', async () => {
    const registry = new MetricsRegistry();
    registry.counter('x_total', 'x').inc(2);
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

describe('MetricsRegistry', () => {
  it('renders Prometheus text exposition with labels escaped', async () => {
    const r = new MetricsRegistry();
    const c = r.counter('a_total', 'help with \\ and\nnewline', [{ result: 'ok' }]);
    c.inc(1, { result: 'ok' });
    c.inc(2, { result: 'we"ird\\' });
    r.gauge('b', 'a gauge', (g) => g.set(1.5));
    expect(await r.render()).toBe(
      '# HELP a_total help with \\\\ and\\nnewline\n# TYPE a_total counter\na_total{result="ok"} 1\na_total{result="we\\"ird\\\\"} 2\n' +
        '# HELP b a gauge\n# TYPE b gauge\nb 1.5\n',
    );
    expect(() => c.inc(-1)).toThrow(RangeError);
    expect(() => r.counter('a_total', 'again')).toThrow(/already registered/);
    expect(() => new Counter('bad name', 'x')).toThrow(/invalid metric name/);
  });
});

describe('formatLogLine', () => {
  it('prints pino JSON as a human line', () => {
    const line = formatLogLine(JSON.stringify({ level: 40, time: '2026-01-02T03:04:05.678Z', msg: 'iteration failed', runId: 3, err: { message: 'boom', code: 'ERR_X' } }));
    expect(line).toBe('03:04:05.678 WARN  iteration failed runId=3 err="ERR_X: boom"\n');
    expect(formatLogLine('not json')).toBe('not json\n');
  });
});
