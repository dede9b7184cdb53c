/**
 * Feeds a metrics registry from a Compactor: its events (`compactor.events$`), its memory
 * budget and, at scrape time, the node's live stream set objects in metadata.
 */
import type { Subscription } from 'rxjs';
import type { Compactor } from '../compactor/compactor.js';
import type { CompactorEvent } from '../compactor/events.js';
import type { MetadataStore } from '../metadata/types.js';
import { MetricsRegistry } from './metrics.js';

export interface AttachMetricsOptions {
  /** Default: a new registry. */
  registry?: MetricsRegistry;
  /** Clock for the compaction delay. Default Date.now. */
  now?: () => number;
}

export interface AttachedMetrics {
  registry: MetricsRegistry;
  /** Stops listening to the compactor (the registry keeps its last values). */
  detach(): void;
}

export const METRIC_NAMES = [
  's3sc_compaction_delay_seconds',
  's3sc_stream_set_objects',
  's3sc_bytes_read_total',
  's3sc_bytes_written_total',
  's3sc_iterations_total',
  's3sc_restarts_total',
  's3sc_runs_total',
  's3sc_aborted_uploads_total',
  's3sc_deleted_objects_total',
  's3sc_last_run_duration_seconds',
  's3sc_budget_in_use_bytes',
  's3sc_budget_limit_bytes',
  's3sc_budget_peak_bytes',
] as const;

/**
 * Registers the s3sc_* metrics in a registry and keeps them current from `compactor.events$`.
 * Run results: `committed` (a commit), `failed` (the run threw), `noop` (nothing to compact).
 */
export function attachMetrics(compactor: Compactor, metadata: MetadataStore, nodeId: number, opts: AttachMetricsOptions = {}): AttachedMetrics {
  const registry = opts.registry ?? new MetricsRegistry();
  const now = opts.now ?? Date.now;

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

  registry.gauge(
    's3sc_compaction_delay_seconds',
    "How far behind compaction is: now - the data time of the node's oldest stream set object that no compaction has merged yet; 0 when none waits.",
    async (g) => {
      const { oldest } = await liveSsos();
      g.set(oldest === undefined ? 0 : Math.max(0, (now() - oldest) / 1000), { node: String(nodeId) });
    },
  );
  registry.gauge('s3sc_stream_set_objects', 'Live stream set objects of the node in metadata.', async (g) => {
    g.set((await liveSsos()).count, { node: String(nodeId) });
  });
  registry.gauge('s3sc_quarantined_objects', 'Objects quarantined in metadata (damaged or inconsistent; left out of compaction until released).', async (g) => {
    g.set((await metadata.listQuarantined?.())?.length ?? 0);
  });
  const quarantinedTotal = registry.counter('s3sc_quarantined_total', 'Objects this compactor quarantined.');
  const bytesRead = registry.counter('s3sc_bytes_read_total', 'Object bytes read by compaction runs.');
  const bytesWritten = registry.counter('s3sc_bytes_written_total', 'Object bytes written by compaction runs (completed output objects).');
  const iterations = registry.counter('s3sc_iterations_total', 'Compaction iterations finished.');
  const restarts = registry.counter('s3sc_restarts_total', 'Iteration attempts that failed and were retried.');
  const runs = registry.counter('s3sc_runs_total', 'Compaction runs by result.', [{ result: 'committed' }, { result: 'failed' }, { result: 'noop' }]);
  const aborted = registry.counter('s3sc_aborted_uploads_total', 'Multipart uploads aborted after a failure.');
  const deleted = registry.counter('s3sc_deleted_objects_total', 'Compacted objects deleted from storage after their grace period.');
  const lastDuration = registry.gauge('s3sc_last_run_duration_seconds', 'Duration of the last compaction run of each outcome.');
  registry.gauge('s3sc_budget_in_use_bytes', 'Bytes of object data held by the pipeline now.', (g) => g.set(compactor.budget.inUse));
  registry.gauge('s3sc_budget_limit_bytes', 'The memory budget (memoryLimit).', (g) => g.set(compactor.budget.limit));
  registry.gauge('s3sc_budget_peak_bytes', 'High-water mark of the memory budget during the last run.', (g) => g.set(compactor.budget.highWater));

  // `bytes` events carry per-run running totals: count what is new since the last one.
  const seen = new Map<number, { read: number; written: number }>();
  const startedAt = new Map<number, number>();
  /** Every run ends with exactly one of committed, idle and failed: its duration, by outcome. */
  const ended = (runId: number, result: 'committed' | 'noop' | 'failed', durationMs?: number) => {
    const t0 = startedAt.get(runId);
    startedAt.delete(runId);
    seen.delete(runId);
    runs.inc(1, { result });
    const ms = durationMs ?? (t0 === undefined ? undefined : performance.now() - t0);
    if (ms !== undefined) lastDuration.set(ms / 1000, { result });
  };
  const onEvent = (e: CompactorEvent) => {
    switch (e.type) {
      case 'run.started':
        seen.set(e.runId, { read: 0, written: 0 });
        startedAt.set(e.runId, performance.now());
        return;
      case 'bytes': {
        const s = seen.get(e.runId) ?? { read: 0, written: 0 };
        if (e.bytesRead > s.read) bytesRead.inc(e.bytesRead - s.read);
        if (e.bytesWritten > s.written) bytesWritten.inc(e.bytesWritten - s.written);
        seen.set(e.runId, { read: Math.max(s.read, e.bytesRead), written: Math.max(s.written, e.bytesWritten) });
        return;
      }
      case 'run.idle':
        ended(e.runId, 'noop', e.report.durationMs);
        return;
      case 'iteration.finished':
        iterations.inc();
        return;
      case 'iteration.failed':
        if (e.willRetry) restarts.inc();
        return;
      case 'upload.aborted':
        aborted.inc();
        return;
      case 'objects.deleted':
        deleted.inc(e.objectIds.length);
        return;
      case 'object.quarantined':
        quarantinedTotal.inc();
        return;
      case 'run.committed': {
        // The report's totals are authoritative: catch up on anything the events missed.
        const s = seen.get(e.runId) ?? { read: 0, written: 0 };
        if (e.report.bytesRead > s.read) bytesRead.inc(e.report.bytesRead - s.read);
        if (e.report.bytesWritten > s.written) bytesWritten.inc(e.report.bytesWritten - s.written);
        ended(e.runId, 'committed', e.report.durationMs);
        return;
      }
      case 'run.failed':
        ended(e.runId, 'failed');
        return;
    }
  };
  const sub: Subscription = compactor.events$.subscribe({ next: onEvent });
  return { registry, detach: () => sub.unsubscribe() };
}
