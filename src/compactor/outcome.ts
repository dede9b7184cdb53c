import { MetadataError, toCompactorError, type CompactorError } from '../errors.js';
import { parseObjectKey } from '../format/keys.js';
import type { MetadataStore } from '../metadata/types.js';
import type { PlanSummary } from '../plan/index.js';
import type { ExecutionResult } from '../actors/supervisor.js';
import type { ObjectStorage } from '../storage/types.js';
import type { CompactionReport } from './events.js';

/** A commit whose outcome is unknown and could not be read back: nothing of it may be deleted. */
export class KeepOutputs {
  constructor(readonly error: CompactorError) {}
}

/** What a run wrote: its plan, what the pipeline reported, and the ids its outputs were given. */
export interface RunOutputs {
  plan: PlanSummary;
  result: ExecutionResult;
  /** -1 when the plan makes no SSO. */
  ssoId: number;
  soIds: number[];
  nodeId: number;
  /** The run's claim on the node, when the store fences. */
  epoch: number | undefined;
}

/** Commits the run's outputs atomically (see commitOrFindIt); returns the stream objects committed. */
export async function commitOutputs(metadata: MetadataStore, out: RunOutputs): Promise<CompactionReport['streamObjects']> {
  const { plan, result, ssoId, soIds } = out;
  const streamObjects = plan.streamObjects.map((so, i) => ({
    objectId: soIds[i]!,
    streamId: so.streamId,
    startOffset: so.startOffset,
    endOffset: so.endOffset,
    objectSize: result.objectSizes.get(`so:${i}`) ?? 0,
  }));
  await commitOrFindIt(metadata, ssoId, soIds, {
    nodeId: out.nodeId,
    objectId: ssoId,
    objectSize: plan.sso ? (result.objectSizes.get('sso') ?? 0) : 0,
    streamRanges: plan.sso ? plan.sso.ranges : [],
    streamObjects,
    compactedObjectIds: plan.compactedObjectIds,
    ...(plan.orderId !== null ? { orderId: plan.orderId } : {}),
    ...(plan.dataTimeMs !== null ? { dataTimeMs: plan.dataTimeMs } : {}),
    ...(out.epoch !== undefined ? { fence: { epoch: out.epoch } } : {}),
  });
  return streamObjects;
}

/** Complete but uncommitted outputs are leftovers: removed now, best effort (GC would, later). */
export async function deleteOutputs(storage: ObjectStorage, result: ExecutionResult, ssoId: number, soIds: number[]): Promise<void> {
  const keys = [...result.objectSizes.keys()].map((d) => storage.keyOf(d === 'sso' ? ssoId : soIds[Number(d.slice(3))]!));
  await storage.deleteObjects(keys).catch(() => {});
}

/**
 * Commits; when the connection broke with the COMMIT in flight (ERR_METADATA_OUTCOME_UNKNOWN),
 * reads metadata back: an output that is there means the commit happened (its outputs must
 * stay), one that is not means it did not. Unreadable: the outcome stays unknown (KeepOutputs),
 * and the outputs are left for garbage collection (which keeps what metadata knows).
 */
async function commitOrFindIt(
  metadata: MetadataStore,
  ssoId: number,
  soIds: number[],
  req: Parameters<MetadataStore['commitStreamSetObject']>[0],
): Promise<void> {
  try {
    await metadata.commitStreamSetObject(req);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_METADATA_OUTCOME_UNKNOWN') throw err;
    const probe = async () => {
      if (ssoId >= 0) return (await metadata.listStreamSetObjects({ nodeId: req.nodeId, withRanges: false })).some((o) => o.objectId === ssoId);
      const first = req.streamObjects[0];
      return first !== undefined && (await metadata.listStreamObjects({ streamId: first.streamId })).some((o) => o.objectId === soIds[0]);
    };
    const committed = await probe().catch(() => undefined);
    if (committed === true) return;
    if (committed === undefined) throw new KeepOutputs(toCompactorError(err));
    throw err;
  }
}

/**
 * A source that vanished from storage mid-run because another compactor compacted it (and its
 * grace period ended) is that: ERR_METADATA_OBJECT_NOT_LIVE, like a lost commit race, not a
 * storage failure to investigate.
 */
export async function explainVanished(metadata: MetadataStore, namespace: string, nodeId: number, error: CompactorError): Promise<CompactorError> {
  if (error.code !== 'ERR_STORAGE_NOT_FOUND') return error;
  const source = parseObjectKey((error as { key?: string }).key ?? '');
  if (!source || source.namespace !== namespace) return error;
  const live = await metadata.listStreamSetObjects({ nodeId, withRanges: false }).catch(() => undefined);
  if (!live || live.some((o) => o.objectId === source.objectId)) return error;
  return new MetadataError(
    'ERR_METADATA_OBJECT_NOT_LIVE',
    `source SSO ${source.objectId} is no longer live: another compactor compacted it during this run (and it was deleted from storage); nothing was committed, the next run plans again`,
    { cause: error },
  );
}
