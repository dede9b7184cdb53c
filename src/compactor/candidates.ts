/** What a run may compact: the node's live SSOs and their streams, less what is quarantined or must wait. */
import type { MetadataStore, QuarantinedObject, StreamMetadata, StreamSetObjectMetadata } from '../metadata/types.js';
import type { PlanExclusion } from '../plan/types.js';
import type { ObjectStorage } from '../storage/types.js';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Above this many (objects x streams of the node), planning does not load metadata ranges. */
const MAX_RANGES_LOADED = 200_000;
/**
 * SSOs whose ranges are loaded at a time (`MetadataStore.listSsoRanges`), the host's event loop
 * turning between: 8 SSOs of 400 ranges take ~5-10 ms of a synchronous store; all 144 took 56-116.
 */
const RANGE_SLICE_OBJECTS = 8;

/** An object a run left out as damaged (it is quarantined in metadata too, where the store can). */
export interface Quarantined {
  objectId: number;
  code: string;
  reason: string;
}

export interface Candidates {
  candidates: StreamSetObjectMetadata[];
  streams: StreamMetadata[];
  /** Beyond maxObjectsPerRun: for a run soon after. */
  waiting: PlanExclusion[];
  /** Quarantined, with the reason. */
  held: PlanExclusion[];
}

/**
 * The run's candidates: this node's live SSOs, newest `dataTimeMs` first, at most
 * `maxObjectsPerRun` (the rest wait for a run soon after), and the metadata of their streams.
 * Quarantined objects (in metadata, or by this run: `thisRun`) are `held` out, each with its reason.
 */
export async function listCandidates(
  metadata: MetadataStore,
  storage: Pick<ObjectStorage, 'keyOf'>,
  options: { nodeId: number; maxObjectsPerRun: number },
  thisRun: ReadonlyMap<number, Quarantined> = new Map(),
): Promise<Candidates> {
  const { nodeId, maxObjectsPerRun } = options;
  const lean = typeof metadata.getStreamsOfNode === 'function';
  // Ranges let planning check each index against what metadata promises, but a node's ranges
  // can number in the hundreds of thousands, and a synchronous store would stall the host's
  // thread loading them: past a bound, planning goes without them.
  const nodeObjects = lean ? await metadata.listStreamSetObjects({ nodeId, withRanges: false }) : undefined;
  const streamCount = lean && nodeObjects!.length > 0 ? (await metadata.getStreamsOfNode!(nodeId)).length : 0;
  const withRanges = !lean || nodeObjects!.length * streamCount <= MAX_RANGES_LOADED;
  const all = !withRanges
    ? nodeObjects!
    : lean && metadata.listSsoRanges
      ? await withSlicedRanges(metadata, nodeObjects!)
      : await metadata.listStreamSetObjects({ nodeId, withRanges: true });
  // The streams are read AFTER the objects: planning drops the blocks of a stream it has no
  // metadata for, and an ingest committing between the two reads would otherwise bring an SSO
  // of a stream that the stream list predates (its records were lost: the many-node test).
  await nextTurn();
  let nodeStreams = lean ? await metadata.getStreamsOfNode!(nodeId) : undefined;
  if (nodeStreams && withRanges) {
    const known = new Set(nodeStreams.map((s) => s.streamId));
    const inRanges = new Set<number>();
    for (const o of all) for (const r of o.ranges) inRanges.add(r.streamId);
    const missing = [...inRanges].filter((id) => !known.has(id));
    if (missing.length > 0) nodeStreams = [...nodeStreams, ...(await metadata.getStreams(missing))];
  }
  const quarantined = new Map<number, QuarantinedObject>();
  for (const q of (await metadata.listQuarantined?.()) ?? []) quarantined.set(q.objectId, q);
  for (const q of thisRun.values()) if (!quarantined.has(q.objectId)) quarantined.set(q.objectId, { ...q, atMs: Date.now() });
  const held: PlanExclusion[] = [];
  const usable = all.filter((o) => {
    const q = quarantined.get(o.objectId);
    if (q) held.push({ objectId: o.objectId, key: storage.keyOf(o.objectId), code: q.code, reason: `quarantined since ${new Date(q.atMs).toISOString()}: ${q.reason}` });
    return !q;
  });
  const sorted = usable.sort((a, b) => b.dataTimeMs - a.dataTimeMs || b.orderId - a.orderId);
  const candidates = sorted.slice(0, maxObjectsPerRun);
  const waiting = sorted.slice(maxObjectsPerRun).map((o) => ({
    objectId: o.objectId,
    key: storage.keyOf(o.objectId),
    reason: `more than maxObjectsPerRun (${maxObjectsPerRun}) objects wait`,
  }));
  const streams = nodeStreams ?? (await metadata.getStreams([...new Set(candidates.flatMap((c) => c.ranges.map((r) => r.streamId)))]));
  return { candidates, streams, waiting, held };
}

/**
 * The node's SSOs (listed without ranges) with their ranges, loaded a slice at a time. Their
 * ranges are read after them: an SSO trimmed in between is checked against its trimmed ranges,
 * which its index holds all the more; one committed in between is not among them.
 */
async function withSlicedRanges(metadata: MetadataStore, objects: StreamSetObjectMetadata[]): Promise<StreamSetObjectMetadata[]> {
  const out: StreamSetObjectMetadata[] = [];
  for (let i = 0; i < objects.length; i += RANGE_SLICE_OBJECTS) {
    await nextTurn();
    const slice = objects.slice(i, i + RANGE_SLICE_OBJECTS);
    const ranges = await metadata.listSsoRanges!(slice.map((o) => o.objectId));
    for (const o of slice) out.push({ ...o, ranges: ranges.get(o.objectId) ?? [] });
  }
  return out;
}
