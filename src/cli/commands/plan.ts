import { formatPlan } from '../../plan/format.js';
import type { CliContext } from '../context.js';
import { EXIT_OK } from '../errors.js';
import { writeJson, writeOut } from '../output.js';
import { openCompactor } from './compact.js';
import { formatQuarantined } from './quarantine.js';

/** Dry run: reads the candidates' indexes and prints the plan; writes nothing. */
export async function planCommand(ctx: CliContext, flags: Record<string, unknown>): Promise<number> {
  const compactor = await openCompactor(ctx, flags, { readOnly: true });
  const { plan } = await compactor.plan();
  const quarantined = (await compactor.metadata.listQuarantined?.()) ?? [];
  if (ctx.globals.json) await writeJson(plan);
  else await writeOut([formatPlan(plan), ...formatQuarantined(quarantined, (id) => compactor.storage.keyOf(id))].join('\n'));
  return EXIT_OK;
}
