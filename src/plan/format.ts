import { humanBytes as bytes } from '../util/units.js';
import type { CompactionPlan } from './types.js';

/** Rows as aligned columns (the last column is not padded). */
function table(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd());
}

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
        `, orderId ${plan.orderId}, data time ${plan.dataTimeMs === null ? '-' : new Date(plan.dataTimeMs).toISOString()}`,
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
  const rows: string[][] = [];
  if (plan.sso) {
    const r = plan.sso.ranges;
    const shown = r.slice(0, 3).map((x) => `${x.streamId} [${x.startOffset}, ${x.endOffset})`).join(', ');
    rows.push(['SSO (new)', String(r.length), `${shown}${r.length > 3 ? `, … ${r.length - 3} more` : ''}`, bytes(plan.sso.dataSize), `${plan.sso.firstIteration}..${plan.sso.closesIn}`]);
  }
  for (const so of plan.streamObjects.slice(0, maxLines)) {
    rows.push([`SO #${so.index}`, '1', `${so.streamId} [${so.startOffset}, ${so.endOffset})`, bytes(so.dataSize), String(so.iteration)]);
  }
  if (plan.streamObjects.length > maxLines) rows.push([`… ${plan.streamObjects.length - maxLines} more SOs`, '', '', '', '']);
  if (rows.length > 0) {
    rows.push(['total', '', '', bytes(t.ssoBytes + t.soBytes), `${plan.iterations.length} iteration(s)`]);
    out.push('  outputs:', ...table(['object', 'streams', 'stream [offsets)', 'bytes', 'iteration'], rows).map((l) => `    ${l}`));
  }
  out.push(`  iterations: ${plan.iterations.length} (memoryLimit ${bytes(plan.memoryLimit)}${plan.openReads > 0 ? `, ${bytes(plan.reserved)} of it left for ${plan.openReads} open reads` : ''}, partSize ${bytes(plan.partSize)})`);
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
