import type { Subscription } from 'rxjs';
import { Compactor } from '../../compactor/compactor.js';
import type { CompactionReport, CompactorEvent } from '../../compactor/events.js';
import type { CompactorError } from '../../errors.js';
import { attachMetrics } from '../../observability/attach.js';
import { startMetricsServer } from '../../observability/server.js';
import type { CliContext } from '../context.js';
import { CliError, EXIT_OK, describeFailure } from '../errors.js';
import { parseTunables } from '../options.js';
import { writeErr, writeJson, writeOut } from '../output.js';
import { humanBytes, humanDuration } from '../../util/units.js';

export interface CompactFlags extends Record<string, unknown> {
  watch?: boolean;
  progress?: boolean;
}

/** Parses options (usage errors first, before any I/O), then opens storage and metadata. */
export async function openCompactor(ctx: CliContext, flags: Record<string, unknown>, opts: { readOnly?: boolean } = {}): Promise<Compactor> {
  const tunables = parseTunables(flags);
  const metadata = await ctx.metadata({ mustExist: true, readOnly: opts.readOnly === true });
  const storage = await ctx.storage(tunables.minPartSize !== undefined ? { minPartSize: tunables.minPartSize } : {});
  const compactor = new Compactor({
    ...tunables,
    ...(flags.adoptExpiredNodes === true ? { adoptExpiredNodes: true } : {}),
    // The CLI's thread has nothing else to serve: it reads while the workers boot.
    hostReadsWhileBooting: true,
    storage,
    metadata,
    nodeId: ctx.globals.nodeId,
    logger: ctx.logger.child({ component: 'compactor' }),
  });
  ctx.onClose(() => compactor.close());
  return compactor;
}

export async function compactCommand(ctx: CliContext, flags: CompactFlags): Promise<number> {
  const compactor = await openCompactor(ctx, flags);
  const g = ctx.globals;
  if (g.metricsPort !== undefined) {
    const { detach, registry } = attachMetrics(compactor, compactor.metadata, g.nodeId, {
      onCollectError: (metric, err) => ctx.logger.warn({ err, metric }, 'metrics collection failed'),
    });
    const server = await startMetricsServer({
      port: g.metricsPort,
      host: g.metricsHost,
      registry,
      onError: (err) => ctx.logger.warn({ err }, 'metrics scrape failed'),
    });
    ctx.onClose(async () => {
      detach();
      await server.close();
    });
    // Always said (port 0 picks one): where to scrape.
    await writeErr(`metrics: ${server.url}`);
  }
  return flags.watch ? watch(ctx, compactor) : once(ctx, compactor, flags.progress !== false);
}

async function once(ctx: CliContext, compactor: Compactor, progressAllowed: boolean): Promise<number> {
  const g = ctx.globals;
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bar = progressAllowed ? progressBar(ctx, compactor) : undefined;
  try {
    const report = await compactor.compactOnce({ signal: controller.signal });
    bar?.stop();
    if (g.json) await writeJson(report);
    else await writeOut(formatReport(report, g.nodeId));
    return EXIT_OK;
  } catch (err) {
    bar?.stop();
    if (controller.signal.aborted) throw new CliError('interrupted: the run was cancelled, nothing was committed', 130, { cause: err });
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function watch(ctx: CliContext, compactor: Compactor): Promise<number> {
  const g = ctx.globals;
  let stopping = false;
  let onFenced: ((err: CompactorError) => void) | undefined;
  const sub = compactor.events$.subscribe((e) => {
    // The run cancelled by the shutdown is not a failure worth reporting.
    if (stopping && e.type === 'run.failed' && e.error.code === 'ERR_ABORTED') return;
    void onWatchEvent(ctx, e);
    // Another compactor owns the node now: this one has stopped for good, and so does the command.
    if (e.type === 'run.failed' && e.error.code === 'ERR_METADATA_FENCED') onFenced?.(e.error);
  });
  ctx.onClose(() => sub.unsubscribe());
  ctx.logger.info({ interval: compactor.options.interval }, 'watching: a compaction run every interval until SIGINT/SIGTERM');
  if (!g.json) await writeErr(`watching node ${g.nodeId}: a run every ${compactor.options.interval} ms; Ctrl-C to stop`);
  compactor.start();
  // The schedule's timer is unref'd (a library must not keep its host alive): in watch mode the
  // command itself holds the process until a signal, or it would exit after the first run.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  const signal = await new Promise<NodeJS.Signals | CompactorError>((resolve) => {
    onFenced = (err) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(err);
    };
    const stop = (sig: NodeJS.Signals) => {
      stopping = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      // A second signal while closing ends the process at once.
      const force = () => process.exit(exitCodeOf(sig));
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      resolve(sig);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearInterval(keepAlive);
  if (typeof signal !== 'string') {
    await compactor.close();
    throw new CliError(`stopped: ${signal.message} [${signal.code}]`, 1, { cause: signal });
  }
  if (!g.json) await writeErr(`stopping (${signal}): cancelling the run in progress and ending the worker threads`);
  await compactor.close();
  return exitCodeOf(signal);
}

/** The shell's convention: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM). */
function exitCodeOf(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? 143 : 130;
}

async function onWatchEvent(ctx: CliContext, e: CompactorEvent): Promise<void> {
  const g = ctx.globals;
  const at = new Date().toISOString();
  if (e.type === 'run.committed') {
    if (g.json) await writeOut(JSON.stringify({ time: at, runId: e.runId, result: 'committed', report: e.report }));
    else await writeOut(`${at} run ${e.runId}: ${formatReport(e.report, g.nodeId).split('\n')[0]}`);
  } else if (e.type === 'run.idle') {
    if (g.json) await writeOut(JSON.stringify({ time: at, runId: e.runId, result: 'noop', reason: e.report.idleReason }));
    else await writeOut(`${at} run ${e.runId}: ${e.report.idleReason ?? 'nothing to compact'}`);
  } else if (e.type === 'run.failed') {
    const { message } = describeFailure(e.error, g.endpoint !== undefined ? { endpoint: g.endpoint } : {});
    if (g.json) await writeOut(JSON.stringify({ time: at, runId: e.runId, result: 'failed', error: { code: e.error.code, message } }));
    else await writeErr(`${at} run ${e.runId} failed: ${message}`);
  }
}

/** The run's progress: bytes read of the plan's total, bytes durable, the iteration. */
function progressBar(ctx: CliContext, compactor: Compactor): { stop(): void } {
  const bar = ctx.terminal.progress({ label: 'compacting', unit: 'bytes' });
  let iters = 0;
  let iter = 0;
  let written = 0;
  const detail = () => `iter ${iter}/${iters}, wrote ${humanBytes(written)}`;
  let sub: Subscription | undefined = compactor.events$.subscribe((e) => {
    if (e.type === 'run.planned' && e.iterations > 0) {
      iters = e.iterations;
      iter = 1;
      bar.start(e.bytesToRead, detail());
    } else if (e.type === 'bytes') {
      written = e.bytesWritten;
      bar.update(e.bytesRead, detail());
    } else if (e.type === 'iteration.finished') {
      // Iterations start ahead of their data (the reader queues them): count the finished ones.
      iter = Math.min(iters, Math.max(iter, e.iteration + 2));
      bar.update(undefined, detail());
    }
  });
  return {
    stop() {
      sub?.unsubscribe();
      sub = undefined;
      bar.stop();
    },
  };
}

export function formatReport(r: CompactionReport, nodeId: number): string {
  const out: string[] = [];
  if (!r.committed) {
    out.push(`${r.idleReason ?? `nothing to compact for node ${nodeId}`} (${humanDuration(r.durationMs)})`);
  } else {
    const outputs: string[] = [];
    if (r.newObjectId >= 0) outputs.push(`SSO ${r.newObjectId}`);
    if (r.streamObjects.length > 0) outputs.push(`${r.streamObjects.length} stream object(s)`);
    out.push(`committed: ${r.compactedObjectIds.length} SSO(s) compacted into ${outputs.join(' and ') || 'nothing (all data was trimmed or deleted)'}`);
    out.push(`  compacted: ${list(r.compactedObjectIds, 12)}`);
    for (const so of r.streamObjects.slice(0, 20)) {
      out.push(`  stream object ${so.objectId}: stream ${so.streamId} [${so.startOffset}, ${so.endOffset}), ${humanBytes(so.objectSize)}`);
    }
    if (r.streamObjects.length > 20) out.push(`  … ${r.streamObjects.length - 20} more stream object(s)`);
    out.push(`  read ${humanBytes(r.bytesRead)}, wrote ${humanBytes(r.bytesWritten)} in ${humanDuration(r.durationMs)} (${humanBytes(Math.round(r.bytesRead / Math.max(0.001, r.durationMs / 1000)))}/s)`);
    out.push(`  ${r.iterations} iteration(s), ${r.restarts} restart(s), peak memory ${humanBytes(r.peakBudgetBytes)}`);
  }
  for (const s of r.skipped) out.push(`  skipped SSO ${s.objectId}: ${s.reason}`);
  if (r.deferred.length > 0) out.push(`  deferred ${r.deferred.length} SSO(s) to the next run: ${r.deferred[0]!.reason}`);
  return out.join('\n');
}

function list(ids: number[], max = 20): string {
  return ids.length <= max ? ids.join(', ') : `${ids.slice(0, max).join(', ')}, … (${ids.length - max} more)`;
}
