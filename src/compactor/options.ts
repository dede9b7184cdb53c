import { MIN_BANDWIDTH } from '../storage/bandwidth.js';
import { MAX_OPEN_READS } from '../storage/s3-client.js';
import { CURSOR_MEMORY } from '../storage/range-cursor.js';
import { OptionsError } from '../errors.js';
import type { MetadataStore } from '../metadata/types.js';
import { OPEN_READS_SHARE, resolvePlannerOptions } from '../plan/options.js';
import { checkPartSizeForStorage } from '../storage/part-size.js';
import type { PlannerOptions } from '../plan/types.js';
import type { ObjectStorage } from '../storage/types.js';
import { humanBytes } from '../util/units.js';
import { checkNonNegativeInt, checkPositiveInt } from '../util/validate.js';
import type { Logger } from 'pino';

const MiB = 1024 * 1024;

export interface CompactorOptions extends Partial<PlannerOptions> {
  storage: ObjectStorage;
  metadata: MetadataStore;
  nodeId: number;
  /** Time between scheduled runs (`start()`). Default 5 min. */
  interval?: number;
  /** Delay before the next scheduled run when objects were deferred. Default 5 s. */
  soonInterval?: number;
  /**
   * Worker threads. Default 1: the planner runs on it, ends, and the pipeline (reader, merger and
   * uploader actors) runs after it on the same warm isolate. A second thread only starts a fresh
   * attempt sooner while a stalled one is being torn down, at the cost of a second isolate and SDK.
   */
  threads?: number;
  /** Attempts of one iteration, the first included, for retryable failures. Default 3. */
  maxIterationAttempts?: number;
  /** Base and cap of the backoff between iteration attempts. Defaults 200 ms and 5 s. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Range GETs in flight per reader. Default 16: the GETs of an iteration are small (a source holds blocks of many outputs), so latency, not bandwidth, bounds them; the memory budget bounds their bytes. */
  readsInFlight?: number;
  /** Part uploads in flight per uploader. Default 4. */
  partsInFlight?: number;
  /** Largest coalesced range GET. Default 16 MiB. */
  maxGetSize?: number;
  /**
   * GETs kept open across iterations, one per source object, each read a stream range at a time
   * and paused between (a source otherwise costs a GET per iteration). Each holds a socket and
   * is counted in the memory budget as 256 KiB (what Node buffers of it and the request:
   * measured 5-85 KiB of RSS each in a run, 255-288 KiB alone in a fresh process), which the
   * plan leaves free. The most a run may open: the plan opens as many as make the fewest GETs,
   * perhaps none. Default: three quarters of `memoryLimit`'s worth (192 under 64 MiB), at most
   * 256, which is also the most allowed; 0: none.
   */
  maxOpenReads?: number;
  /** Index reads in flight while planning. Default 16. */
  indexReadConcurrency?: number;
  /**
   * How much lower than the host's the worker threads' CPU priority is: a nice increment (0 to
   * 19) applied to each of them when it starts, so that where CPU is short the ingest node's own
   * threads run first and compaction takes what is left. Default 10; 0 leaves them at the host's.
   * Linux only (piscina's `niceIncrement`, through its optional `@napi-rs/nice`); ignored elsewhere.
   */
  niceIncrement?: number;
  /** An actor that sends no heartbeat for this long is unresponsive: it is killed and replaced. Default 5 s. */
  heartbeatTimeoutMs?: number;
  /** Deadline of one iteration attempt, however healthy its actors look. Default 10 min. */
  iterationTimeoutMs?: number;
  /** Deadline for an actor to acknowledge a cancel before it is killed. Default 2 s. */
  cancelTimeoutMs?: number;
  /** Unknown objects and unfinished uploads younger than this are kept by garbage collection. Default 1 h. */
  gcSafetyAgeMs?: number;
  /** The node lease a run holds (renewed every third of it); a crashed holder's expires after it. Default 30 s. */
  leaseTtlMs?: number;
  /**
   * Opt-in: after each scheduled run, compact one other node whose compactor stopped renewing
   * its lease (a dead ingest node), under that node's id, keeping its SSOs' orderId and data
   * time. At most one adoption at a time; the home node takes its id back when it returns, and
   * the adopter's run of it is fenced. Needs a store with `listExpiredNodes` (both stores), and
   * every node's compactor running scheduled (`start()`), which holds its lease while it lives.
   */
  adoptExpiredNodes?: boolean;
  /**
   * When a run's candidate objects fit in `memoryLimit` together, planning reads each of them
   * whole (its index and its data in one GET) and the run copies from those bytes: one GET per
   * object instead of an index GET and a data GET. Default true; false always reads indexes
   * first and data when it is copied.
   */
  readWholeWhenFits?: boolean;
  /**
   * A run that starts while the worker threads still boot (a first `compactOnce` right after
   * `new Compactor()`: ~250 ms of Node's bootstrap and the SDK) has the host's thread read index
   * tails with the compactor's storage until the planner starts (actors/boot-reads.ts): with
   * network latency the plan comes sooner (bench/boot-reads.mjs), and the host's event loop
   * carries those requests (measured: p99 delay +0.5-2 ms, single delays of 25-45 ms, a host
   * client warmed up by earlier requests alike). Default false, for a host whose event loop
   * serves other work; the CLI turns it on.
   */
  hostReadsWhileBooting?: boolean;
  /**
   * Bytes per second for all of a run's S3 reads and writes together (index reads, GETs, parts),
   * shared by every worker thread: compaction then never takes more of the node's network than
   * this. Default: no limit.
   */
  bandwidthLimit?: number;
  logger?: Logger;
}

export interface ResolvedCompactorOptions extends PlannerOptions {
  nodeId: number;
  interval: number;
  soonInterval: number;
  threads: number;
  maxIterationAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  readsInFlight: number;
  partsInFlight: number;
  maxGetSize: number;
  maxOpenReads: number;
  indexReadConcurrency: number;
  heartbeatTimeoutMs: number;
  iterationTimeoutMs: number;
  cancelTimeoutMs: number;
  gcSafetyAgeMs: number;
  leaseTtlMs: number;
  adoptExpiredNodes: boolean;
  readWholeWhenFits: boolean;
  hostReadsWhileBooting: boolean;
  bandwidthLimit: number | undefined;
  niceIncrement: number;
}

export const COMPACTOR_DEFAULTS = Object.freeze({
  interval: 5 * 60_000,
  soonInterval: 5_000,
  threads: 1,
  maxIterationAttempts: 3,
  retryBaseDelayMs: 200,
  retryMaxDelayMs: 5_000,
  readsInFlight: 16,
  partsInFlight: 4,
  maxGetSize: 16 * MiB,
  indexReadConcurrency: 16,
  heartbeatTimeoutMs: 5_000,
  iterationTimeoutMs: 10 * 60_000,
  cancelTimeoutMs: 2_000,
  gcSafetyAgeMs: 60 * 60_000,
  leaseTtlMs: 30_000,
});

/** Worker threads' nice increment by default: compaction yields the CPU to the host's threads. */
export const DEFAULT_NICE_INCREMENT = 10;
/** The largest nice increment that means anything: nice values end at 19. */
const MAX_NICE_INCREMENT = 19;

/** Validates every option at the boundary; errors name the option and the fix. */
export function resolveCompactorOptions(opts: CompactorOptions): ResolvedCompactorOptions {
  if (typeof opts !== 'object' || opts === null) throw new OptionsError('options', 'must be an object');
  if (!opts.storage || typeof opts.storage.getRange !== 'function') {
    throw new OptionsError('storage', 'must be an S3Storage (or another ObjectStorage)');
  }
  if (!opts.metadata || typeof opts.metadata.commitStreamSetObject !== 'function') {
    throw new OptionsError('metadata', 'must be a SqliteMetadataStore (or another MetadataStore)');
  }
  if ('partAttempts' in opts) {
    // Removed in 0.x: the uploader's retries on top of the S3 client's made 3 x 3 attempts a part.
    throw new OptionsError('partAttempts', 'was removed: a request retries in the S3 client (the storage\'s maxAttempts), then the iteration restarts (maxIterationAttempts)');
  }
  const planner = resolvePlannerOptions(opts);
  // The planner's minimum can be lowered for pure planning; parts go to a real store here.
  checkPartSizeForStorage(opts.storage, planner.partSize);
  if (opts.adoptExpiredNodes !== undefined && typeof opts.adoptExpiredNodes !== 'boolean') {
    throw new OptionsError('adoptExpiredNodes', `must be true or false, got ${JSON.stringify(opts.adoptExpiredNodes)}`);
  }
  for (const k of ['readWholeWhenFits', 'hostReadsWhileBooting'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'boolean') throw new OptionsError(k, `must be true or false, got ${JSON.stringify(opts[k])}`);
  }
  const out: ResolvedCompactorOptions = {
    ...planner,
    ...COMPACTOR_DEFAULTS,
    nodeId: checkNonNegativeInt('nodeId', opts.nodeId),
    adoptExpiredNodes: opts.adoptExpiredNodes === true,
    readWholeWhenFits: opts.readWholeWhenFits !== false,
    hostReadsWhileBooting: opts.hostReadsWhileBooting === true,
    bandwidthLimit: undefined,
    maxOpenReads: 0,
    niceIncrement: DEFAULT_NICE_INCREMENT,
  };
  for (const k of Object.keys(COMPACTOR_DEFAULTS) as (keyof typeof COMPACTOR_DEFAULTS)[]) {
    const v = opts[k];
    if (v !== undefined) out[k] = checkPositiveInt(k, v);
  }
  // Open reads are counted in the budget (CURSOR_MEMORY each), and the plan leaves them free: at
  // most OPEN_READS_SHARE of the limit. By default the most: the plan opens only as many as save GETs.
  const mostOpenReads = Math.min(MAX_OPEN_READS, Math.floor((planner.memoryLimit * OPEN_READS_SHARE) / CURSOR_MEMORY));
  if (opts.maxOpenReads === undefined) {
    out.maxOpenReads = mostOpenReads;
  } else {
    if (!Number.isSafeInteger(opts.maxOpenReads) || opts.maxOpenReads < 0 || opts.maxOpenReads > MAX_OPEN_READS) {
      throw new OptionsError('maxOpenReads', `must be an integer from 0 (a GET per source and iteration) to ${MAX_OPEN_READS}, got ${String(opts.maxOpenReads)}`);
    }
    if (opts.maxOpenReads > mostOpenReads) {
      throw new OptionsError(
        'maxOpenReads',
        `${opts.maxOpenReads} open reads would take ${humanBytes(opts.maxOpenReads * CURSOR_MEMORY)} of memoryLimit (${humanBytes(CURSOR_MEMORY)} each), ` +
          `more than three quarters of ${humanBytes(planner.memoryLimit)}: at most ${mostOpenReads} under this limit (or raise memoryLimit)`,
      );
    }
    out.maxOpenReads = opts.maxOpenReads;
  }
  if (opts.niceIncrement !== undefined) {
    if (!Number.isSafeInteger(opts.niceIncrement) || opts.niceIncrement < 0 || opts.niceIncrement > MAX_NICE_INCREMENT) {
      throw new OptionsError('niceIncrement', `must be an integer from 0 (the host's CPU priority) to ${MAX_NICE_INCREMENT} (the lowest), got ${String(opts.niceIncrement)}`);
    }
    out.niceIncrement = opts.niceIncrement;
  }
  if (opts.bandwidthLimit !== undefined) {
    if (!Number.isSafeInteger(opts.bandwidthLimit) || opts.bandwidthLimit < MIN_BANDWIDTH) {
      throw new OptionsError('bandwidthLimit', `must be an integer number of bytes per second of at least ${MIN_BANDWIDTH} (64 KiB/s), got ${String(opts.bandwidthLimit)}`);
    }
    out.bandwidthLimit = opts.bandwidthLimit;
  }
  return out;
}
