import { collectGarbage } from '../../compactor/gc.js';
import type { CliContext } from '../context.js';
import { EXIT_OK } from '../errors.js';
import { writeJson, writeOut } from '../output.js';
import { formatDuration, parseDuration } from '../parse.js';

export async function gcCommand(ctx: CliContext, flags: { dryRun?: boolean; force?: boolean; safetyAge: string }): Promise<number> {
  const safetyAgeMs = parseDuration('--safety-age', flags.safetyAge);
  const metadata = await ctx.metadata({ mustExist: true });
  const storage = await ctx.storage();
  const dryRun = flags.dryRun === true;
  const bar = ctx.terminal.progress({ label: 'gc', unit: 'items' });
  let phase: string | undefined;
  const report = await collectGarbage(storage, metadata, {
    safetyAgeMs,
    dryRun,
    force: flags.force === true,
    onProgress: (p) => {
      if (p.phase !== phase) {
        phase = p.phase;
        bar.start(p.total, p.phase === 'objects' ? 'objects checked against metadata' : 'unfinished uploads aborted');
      }
      bar.update(p.done + 1);
    },
  }).finally(() => bar.stop());
  if (ctx.globals.json) {
    await writeJson({ ...report, safetyAgeMs });
    return EXIT_OK;
  }
  const verb = dryRun ? 'would remove' : 'removed';
  const out = [
    `gc${dryRun ? ' (dry run)' : ''}: ${verb} ${report.deletedObjects.length} unknown object(s), ` +
      `${dryRun ? 'would abort' : 'aborted'} ${report.abortedUploads.length} unfinished upload(s), ` +
      `${dryRun ? 'would delete' : 'deleted'} ${report.deletedCompacted.length} compacted object(s) past their grace period ` +
      `(safety age ${formatDuration(safetyAgeMs)})`,
  ];
  for (const k of report.deletedObjects) out.push(`  object ${k}`);
  for (const u of report.abortedUploads) out.push(`  upload ${u.key} (${u.uploadId})`);
  for (const id of report.deletedCompacted) out.push(`  compacted ${storage.keyOf(id)}`);
  await writeOut(out.join('\n'));
  return EXIT_OK;
}
