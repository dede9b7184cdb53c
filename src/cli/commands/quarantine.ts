import { objectKey } from '../../format/keys.js';
import type { QuarantinedObject } from '../../metadata/types.js';
import type { CliContext } from '../context.js';
import { EXIT_OK, UsageError } from '../errors.js';
import { writeJson, writeOut } from '../output.js';
import { parseInteger } from '../parse.js';

/** Lines for quarantined objects: what `verify`, `plan` and `quarantine list` print. */
export function formatQuarantined(list: readonly QuarantinedObject[], keyOf: (id: number) => string): string[] {
  if (list.length === 0) return [];
  return [
    `quarantined: ${list.length} object(s), left out of compaction until released (s3-stream-compactor quarantine release <id>):`,
    ...list.map((q) => `  object ${q.objectId} (${keyOf(q.objectId)}) since ${new Date(q.atMs).toISOString()} [${q.code}]: ${q.reason}`),
  ];
}

/** `quarantine list`, `quarantine release <id>`: objects planning or copying found damaged. */
export async function quarantineCommand(ctx: CliContext, action: string, id: string | undefined): Promise<number> {
  const metadata = await ctx.metadata({ mustExist: true, readOnly: action === 'list' });
  // Keys need only the namespace: no storage connection for a metadata-only command.
  const keyOf = (objectId: number) => objectKey(objectId, ctx.globals.namespace);
  if (action === 'list') {
    const list = await metadata.listQuarantined();
    if (ctx.globals.json) await writeJson(list);
    else await writeOut(list.length === 0 ? 'quarantine: empty' : formatQuarantined(list, keyOf).join('\n'));
    return EXIT_OK;
  }
  if (action === 'release') {
    if (id === undefined) throw new UsageError('<id>', 'quarantine release needs the object id to release (see quarantine list)');
    const objectId = parseInteger('<id>', id, 0, Number.MAX_SAFE_INTEGER);
    const released = await metadata.releaseQuarantined(objectId);
    if (!released) throw new UsageError('<id>', `object ${objectId} is not quarantined (see quarantine list)`);
    if (ctx.globals.json) await writeJson({ released: objectId });
    else await writeOut(`released object ${objectId}: the next run compacts it again (repair it first if it is damaged)`);
    return EXIT_OK;
  }
  throw new UsageError('<action>', `expected list or release, got "${action}"`);
}
