import { humanBytes as bytes } from '../util/units.js';
import type { CompactionPlan } from './types.js';

function list(ids: number[], max = 20): string {
  return ids.length <= max ? ids.join(', ') : `${ids.slice(0, max).join(', ')}, … (${ids.length - max} more)`;
}

/** A human summary of a plan, for a dry run. `maxLines` bounds the per-object/per-output lists. */
export function formatPlan(plan: CompactionPlan, opts: { maxLines?: number } = {}): string {
  const maxLines = opts.maxLines ?? 20;
  const out: string[] = [];
  const t = plan.totals;
  const nCompacted = plan.compactedObjectIds.length;
  if (nCompacted === 0) {
    out.push('compaction plan: nothing to compact');
  } else {
    out.push(
      `compaction plan: ${nCompacted} SSO(s) compacted away` +
        (plan.emptiedObjectIds.length ? ` (${plan.emptiedObjectIds.length} with no live data)` : '') +
        `, orderId ${plan.orderId}, dataTimeMs ${plan.dataTimeMs}`,
    );
    out.push(`  compacted: ${list(plan.compactedObjectIds, maxLines)}`);
  }
  out.push(
    `  read ${t.blocks} block(s), ${bytes(t.bytesToRead)}; dropped ${t.droppedBlocks} trimmed/deleted block(s), ${bytes(t.droppedBytes)}`,
  );
  if (plan.sso) {
    out.push(
      `  new SSO: ${plan.sso.ranges.length} stream(s), ${bytes(plan.sso.dataSize)} in ${plan.sso.blocks} block(s), ` +
        `iterations ${plan.sso.firstIteration}..${plan.sso.closesIn}`,
    );
  } else {
    out.push('  new SSO: none');
  }
  out.push(`  stream objects: ${plan.streamObjects.length}, ${bytes(t.soBytes)}`);
  for (const so of plan.streamObjects.slice(0, maxLines)) {
    out.push(`    #${so.index} stream ${so.streamId} [${so.startOffset}, ${so.endOffset}) ${bytes(so.dataSize)}, iteration ${so.iteration}`);
  }
  if (plan.streamObjects.length > maxLines) out.push(`    … ${plan.streamObjects.length - maxLines} more`);
  out.push(`  iterations: ${plan.iterations.length} (memoryLimit ${bytes(plan.memoryLimit)}, partSize ${bytes(plan.partSize)})`);
  for (const it of plan.iterations.slice(0, maxLines)) {
    out.push(`    #${it.index}: ${it.blocks.length} block(s), ${bytes(it.bytes)} + SSO tail ${bytes(it.tailBefore)}`);
  }
  if (plan.iterations.length > maxLines) out.push(`    … ${plan.iterations.length - maxLines} more`);
  if (plan.untouched.length) out.push(`  untouched (no stream shared): ${list(plan.untouched, maxLines)}`);
  for (const [title, xs] of [
    ['skipped', plan.skipped],
    ['deferred to a later run', plan.deferred],
  ] as const) {
    if (!xs.length) continue;
    out.push(`  ${title}: ${xs.length}`);
    for (const x of xs.slice(0, maxLines)) out.push(`    object ${x.objectId} (${x.key}): ${x.reason}`);
    if (xs.length > maxLines) out.push(`    … ${xs.length - maxLines} more`);
  }
  return out.join('\n');
}

/**
 * Why a plan compacts nothing, in one sentence naming every candidate's fate: a run that commits
 * nothing must never be silent about it. `null` when the plan compacts something.
 */
export function idleReason(plan: Pick<CompactionPlan, 'compactedObjectIds' | 'untouched' | 'skipped' | 'deferred'>, opts: { candidates: number; nodeId: number; forceSplitAfterMs: number }): string | null {
  if (plan.compactedObjectIds.length > 0) return null;
  if (opts.candidates === 0) return `node ${opts.nodeId} has no live stream set object`;
  const parts: string[] = [];
  if (plan.untouched.length > 0) {
    parts.push(
      `${plan.untouched.length} SSO(s) share no stream with another candidate, so merging them gains nothing ` +
        `(left alone until they are older than forceSplitAfterMs, ${opts.forceSplitAfterMs} ms, and get split): ${list(plan.untouched)}`,
    );
  }
  if (plan.skipped.length > 0) parts.push(`${plan.skipped.length} SSO(s) skipped (see skipped)`);
  if (plan.deferred.length > 0) parts.push(`${plan.deferred.length} SSO(s) deferred to a later run (see deferred)`);
  const accounted = plan.untouched.length + plan.skipped.length + plan.deferred.length;
  if (accounted < opts.candidates) parts.push(`${opts.candidates - accounted} candidate(s) with nothing to do`);
  return `nothing to compact among ${opts.candidates} candidate SSO(s) of node ${opts.nodeId}: ${parts.join('; ')}`;
}
