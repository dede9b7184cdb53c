/**
 * Feeds a prom-client registry from a Compactor: its events (`compactor.events$`, the S3 request
 * samples of every thread included), its memory budget and, at scrape time, the node's live
 * stream set objects in metadata. Every compactor metric has the `node` label.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Subscription } from 'rxjs';
import type { Compactor } from '../compactor/compactor.js';
import type { CompactorEvent } from '../compactor/events.js';
import type { MetadataStore } from '../metadata/types.js';

export interface AttachMetricsOptions {
  /** A prom-client registry. Default: a new one. */
  registry?: Registry;
  /**
   * prom-client's default process and Node.js metrics (process_*, nodejs_*) in the registry.
   * Default: true for a registry attachMetrics creates; a host's own registry is left as it is.
   */
  defaultMetrics?: boolean;
  /** Clock for the compaction delay. Default Date.now. */
  now?: () => number;
  /**
   * Told when a scrape-time collector fails (metadata unreachable, ...): that metric has no
   * series in this scrape, and the scrape still succeeds.
   */
  onCollectError?: (metric: string, err: unknown) => void;
}

export interface AttachedMetrics {
  registry: Registry;
  /** Stops listening to the compactor and removes its metrics from the registry. */
  detach(): void;
}

export const METRIC_NAMES = [
  's3sc_compaction_delay_seconds',
  's3sc_stream_set_objects',
  's3sc_quarantined_objects',
  's3sc_quarantined_total',
  's3sc_bytes_read_total',
  's3sc_bytes_written_total',
  's3sc_iterations_total',
  's3sc_restarts_total',
  's3sc_runs_total',
  's3sc_run_duration_seconds',
  's3sc_last_run_duration_seconds',
  's3sc_aborted_uploads_total',
  's3sc_deleted_objects_total',
  's3sc_s3_request_duration_seconds',
  's3sc_s3_request_errors_total',
  's3sc_budget_in_use_bytes',
  's3sc_budget_limit_bytes',
  's3sc_budget_peak_bytes',
  's3sc_bandwidth_limit_bytes',
  's3sc_bandwidth_wait_seconds_total',
] as const;

const RUN_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RESULTS = ['committed', 'failed', 'noop'] as const;

/**
 * Registers the s3sc_* metrics and keeps them current from `compactor.events$`. Run results:
 * `committed` (a commit), `failed` (the run threw), `noop` (nothing to compact).
 */
export function attachMetrics(compactor: Compactor, metadata: MetadataStore, nodeId: number, opts: AttachMetricsOptions = {}): AttachedMetrics {
  const registry = opts.registry ?? new Registry();
  if (opts.defaultMetrics ?? opts.registry === undefined) collectDefaultMetrics({ register: registry });
  const now = opts.now ?? Date.now;
  const node = String(nodeId);
  const registers = [registry];

  // One listing serves both gauges of a scrape.
  let pending: Promise<{ count: number; oldest: number | undefined }> | undefined;
  const liveSsos = () => {
    pending ??= metadata
      .listStreamSetObjects({ nodeId })
      .then((ssos) => {
        // Waiting for compaction: SSOs an ingest wrote (orderId = objectId). A compaction's output
        // takes the orderId of the oldest SSO it replaced (smaller than its own id) and its data
        // time, so counting it would keep the delay growing after a full compaction.
        const waiting = ssos.filter((s) => s.orderId >= s.objectId);
        return { count: ssos.length, oldest: waiting.length ? Math.min(...waiting.map((s) => s.dataTimeMs)) : undefined };
      })
      .finally(() => {
        queueMicrotask(() => (pending = undefined));
      });
    return pending;
  };
  /** A scrape-time gauge whose failing collector leaves it without a series, not the scrape failed. */
  const scraped = (name: string, help: string, value: () => Promise<number> | number) =>
    new Gauge({
      name,
      help,
      labelNames: ['node'],
      registers,
      async collect() {
        this.reset();
        try {
          this.set({ node }, await value());
        } catch (err) {
          opts.onCollectError?.(name, err);
        }
      },
    });

  scraped(
    's3sc_compaction_delay_seconds',
    "How far behind compaction is: now - the data time of the node's oldest stream set object that no compaction has merged yet; 0 when none waits.",
    async () => {
      const { oldest } = await liveSsos();
      return oldest === undefined ? 0 : Math.max(0, (now() - oldest) / 1000);
    },
  );
  scraped('s3sc_stream_set_objects', 'Live stream set objects of the node in metadata.', async () => (await liveSsos()).count);
  scraped(
    's3sc_quarantined_objects',
    'Objects quarantined in metadata (damaged or inconsistent; left out of compaction until released).',
    async () => (await metadata.listQuarantined?.())?.length ?? 0,
  );
  scraped('s3sc_budget_in_use_bytes', 'Bytes of object data held by the pipeline now.', () => compactor.budget.inUse);
  scraped('s3sc_budget_limit_bytes', 'The memory budget (memoryLimit).', () => compactor.budget.limit);
  scraped('s3sc_budget_peak_bytes', 'High-water mark of the memory budget during the last run.', () => compactor.budget.highWater);
  scraped('s3sc_bandwidth_limit_bytes', 'The bandwidth limit (bandwidthLimit) in bytes per second; 0 when there is none.', () => compactor.bandwidth?.bytesPerSecond ?? 0);
  let waitedBefore = 0;
  new Counter({
    name: 's3sc_bandwidth_wait_seconds_total',
    help: 'Time S3 requests of all threads waited for the bandwidth limit.',
    labelNames: ['node'],
    registers,
    collect() {
      const waited = compactor.bandwidth?.waitedSeconds ?? 0;
      this.inc({ node }, Math.max(0, waited - waitedBefore));
      waitedBefore = Math.max(waitedBefore, waited);
    },
  });

  const counter = (name: string, help: string) => {
    const c = new Counter({ name, help, labelNames: ['node'], registers });
    c.inc({ node }, 0); // a zero series up front, so rate() sees the first increment
    return c;
  };
  const quarantinedTotal = counter('s3sc_quarantined_total', 'Objects this compactor quarantined.');
  const bytesRead = counter('s3sc_bytes_read_total', 'Object bytes read by compaction runs.');
  const bytesWritten = counter('s3sc_bytes_written_total', 'Object bytes made durable by compaction runs (parts as they complete, retries included).');
  const iterations = counter('s3sc_iterations_total', 'Compaction iterations finished.');
  const restarts = counter('s3sc_restarts_total', 'Iteration attempts that failed and were retried.');
  const aborted = counter('s3sc_aborted_uploads_total', 'Multipart uploads aborted after a failure.');
  const deleted = counter('s3sc_deleted_objects_total', 'Compacted objects deleted from storage after their grace period.');
  const runs = new Counter({ name: 's3sc_runs_total', help: 'Compaction runs by result.', labelNames: ['node', 'result'], registers });
  for (const result of RESULTS) runs.inc({ node, result }, 0);
  const runDuration = new Histogram({
    name: 's3sc_run_duration_seconds',
    help: 'Duration of compaction runs, by result.',
    labelNames: ['node', 'result'],
    buckets: RUN_BUCKETS,
    registers,
  });
  const lastDuration = new Gauge({ name: 's3sc_last_run_duration_seconds', help: 'Duration of the last compaction run of each result.', labelNames: ['node', 'result'], registers });
  const requestDuration = new Histogram({
    name: 's3sc_s3_request_duration_seconds',
    help: 'S3 request attempts by operation, until the response headers (every thread of the compactor; a retry is an attempt of its own).',
    labelNames: ['node', 'operation'],
    buckets: REQUEST_BUCKETS,
    registers,
  });
  const requestErrors = new Counter({
    name: 's3sc_s3_request_errors_total',
    help: 'Failed S3 request attempts by operation and error code (S3 code such as SlowDown, or a network error such as ECONNRESET).',
    labelNames: ['node', 'operation', 'code'],
    registers,
  });

  // `bytes` events carry per-run running totals: count what is new since the last one.
  const seen = new Map<number, { read: number; written: number }>();
  const startedAt = new Map<number, number>();
  /** Every run ends with exactly one of committed, idle and failed: its duration, by result. */
  const ended = (runId: number, result: (typeof RESULTS)[number], durationMs?: number) => {
    const t0 = startedAt.get(runId);
    startedAt.delete(runId);
    seen.delete(runId);
    runs.inc({ node, result });
    const ms = durationMs ?? (t0 === undefined ? undefined : performance.now() - t0);
    if (ms !== undefined) {
      lastDuration.set({ node, result }, ms / 1000);
      runDuration.observe({ node, result }, ms / 1000);
    }
  };
  const onEvent = (e: CompactorEvent) => {
    switch (e.type) {
      case 'run.started':
        seen.set(e.runId, { read: 0, written: 0 });
        startedAt.set(e.runId, performance.now());
        return;
      case 'bytes': {
        const s = seen.get(e.runId) ?? { read: 0, written: 0 };
        if (e.bytesRead > s.read) bytesRead.inc({ node }, e.bytesRead - s.read);
        if (e.bytesWritten > s.written) bytesWritten.inc({ node }, e.bytesWritten - s.written);
        seen.set(e.runId, { read: Math.max(s.read, e.bytesRead), written: Math.max(s.written, e.bytesWritten) });
        return;
      }
      case 's3.requests':
        for (const r of e.requests) {
          requestDuration.observe({ node, operation: r.operation }, r.durationMs / 1000);
          if (r.error !== undefined) requestErrors.inc({ node, operation: r.operation, code: r.error });
        }
        return;
      case 'run.idle':
        ended(e.runId, 'noop', e.report.durationMs);
        return;
      case 'iteration.finished':
        iterations.inc({ node });
        return;
      case 'iteration.failed':
        if (e.willRetry) restarts.inc({ node });
        return;
      case 'upload.aborted':
        aborted.inc({ node });
        return;
      case 'objects.deleted':
        deleted.inc({ node }, e.objectIds.length);
        return;
      case 'object.quarantined':
        quarantinedTotal.inc({ node });
        return;
      case 'run.committed': {
        // The report's totals are authoritative for reads: catch up on anything the events missed.
        const s = seen.get(e.runId) ?? { read: 0, written: 0 };
        if (e.report.bytesRead > s.read) bytesRead.inc({ node }, e.report.bytesRead - s.read);
        ended(e.runId, 'committed', e.report.durationMs);
        return;
      }
      case 'run.failed':
        ended(e.runId, 'failed');
        return;
    }
  };
  const sub: Subscription = compactor.events$.subscribe({ next: onEvent });
  return {
    registry,
    detach: () => {
      sub.unsubscribe();
      for (const name of METRIC_NAMES) registry.removeSingleMetric(name);
    },
  };
}
