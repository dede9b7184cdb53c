/**
 * Reads the host's thread makes for a run's planning while the planner's thread still boots.
 *
 * A cold worker thread spends ~250 ms before the planner runs (Node's own bootstrap, then the
 * SDK), and a first run right after `new Compactor()` used to send its first index read only
 * then. The host's storage is loaded already, so the host reads the first candidates' index
 * tails until the planner starts, and hands the bytes over (moved, not copied); the planner
 * reads the rest.
 * Both take candidates from one counter in shared memory, so each candidate is read once, by
 * whichever side took it. A warm pool skips all this: the planner starts at once.
 *
 * The host only moves bytes here: decoding and planning stay on the planner's thread.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { INDEX_MIN_GUESS, indexReadGuessFor } from '../format/index.js';
import type { StreamSetObjectMetadata } from '../metadata/types.js';
import { BandwidthLimiter, type BandwidthHandle } from '../storage/bandwidth.js';
import type { ObjectStorage } from '../storage/types.js';
import { AbortError } from '../errors.js';
import { deferred, linkedController, raceAbort, type Deferred } from '../util/async.js';
import { allocFreeable, free } from '../util/freeable.js';

/** Slots of the shared counter: the next candidate to take, and whether the planner has started. */
const NEXT = 0;
const PLANNER_STARTED = 1;

/** What the first read of a candidate's index takes from its end (`readObjectIndex`'s `minGuess`). */
export function indexGuessOf(meta: StreamSetObjectMetadata): number {
  return indexReadGuessFor(meta.objectSize, meta.ranges.length, INDEX_MIN_GUESS);
}

/** What the planner's init carries: the shared counter and its end of the host's port. */
export interface BootReadsInit {
  claims: SharedArrayBuffer;
  port: MessagePort;
}

/** One candidate the host read (bytes [start, objectSize)), or failed to (the planner reads it again). */
export type BootRead = { type: 'read'; i: number; start: number; bytes: Uint8Array } | { type: 'failed'; i: number };

export interface BootReads {
  /** For the planner's init (its port listed in the transfer list). */
  init: BootReadsInit;
  /** Stops taking candidates, ends the reads in flight and closes the host's end of the port. */
  stop(): Promise<void>;
}

/** Starts the host's reads (`concurrency` at a time) until the planner starts or `signal` aborts. */
export function startBootReads(
  storage: ObjectStorage,
  candidates: readonly StreamSetObjectMetadata[],
  opts: { concurrency: number; signal: AbortSignal; bandwidth?: BandwidthHandle | undefined },
): BootReads {
  // The host's storage is the embedder's, outside the compactor's bandwidth limit: these reads
  // take their bytes from it here, as the threads' reads do in their storage.
  const limiter = opts.bandwidth === undefined ? undefined : new BandwidthLimiter(opts.bandwidth);
  const claims = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const flags = new Int32Array(claims);
  const channel = new MessageChannel();
  const { controller: ac, dispose } = linkedController(opts.signal);
  const lane = async (): Promise<void> => {
    while (!ac.signal.aborted && Atomics.load(flags, PLANNER_STARTED) === 0) {
      const i = Atomics.add(flags, NEXT, 1);
      if (i >= candidates.length) return;
      const meta = candidates[i]!;
      const start = meta.objectSize - indexGuessOf(meta);
      // Its own ArrayBuffer (not a pooled slice), so that posting moves it instead of copying.
      const bytes = allocFreeable(meta.objectSize - start);
      let read: BootRead;
      try {
        await limiter?.take(bytes.byteLength, ac.signal);
        await storage.getRangeInto(storage.keyOf(meta.objectId), start, meta.objectSize, bytes, { signal: ac.signal });
        read = { type: 'read', i, start, bytes };
      } catch {
        // The planner reads it again and reports what it finds: one place decides what is unreadable.
        free(bytes);
        read = { type: 'failed', i };
      }
      channel.port1.postMessage(read, read.type === 'read' ? [bytes.buffer] : []);
    }
  };
  const lanes = Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, candidates.length)) }, lane));
  return {
    init: { claims, port: channel.port2 },
    async stop() {
      ac.abort(new AbortError('the planner took over the index reads'));
      await lanes;
      dispose();
      channel.port1.close();
    },
  };
}

/** The planner's side: takes candidates from the shared counter and receives what the host read. */
export class BootReadsReceiver {
  private readonly flags: Int32Array;
  /** By candidate: what the host sent, or undefined once its port closed without it. */
  private readonly results = new Map<number, Deferred<BootRead | undefined>>();
  private closed = false;

  constructor(private readonly init: BootReadsInit) {
    this.flags = new Int32Array(init.claims);
    // From now on the host takes no more: what it took is in flight or here already.
    Atomics.store(this.flags, PLANNER_STARTED, 1);
    init.port.on('message', this.onMessage);
    init.port.once('close', this.onClose);
  }

  /** The next candidate nobody has taken (past the end when all are taken). */
  claim(): number {
    return Atomics.add(this.flags, NEXT, 1);
  }

  /** What the host read of candidate `i` (which it took): undefined when its port closed first. */
  async result(i: number, signal: AbortSignal): Promise<BootRead | undefined> {
    try {
      return await raceAbort(this.resultOf(i).promise, signal);
    } finally {
      this.results.delete(i);
    }
  }

  /** Stops listening and closes this end of the port (again: nothing). */
  close(): void {
    this.init.port.off('message', this.onMessage);
    this.init.port.off('close', this.onClose);
    this.init.port.close();
    this.onClose();
    this.results.clear();
  }

  private resultOf(i: number): Deferred<BootRead | undefined> {
    let d = this.results.get(i);
    if (!d) {
      this.results.set(i, (d = deferred()));
      if (this.closed) d.resolve(undefined);
    }
    return d;
  }

  private readonly onMessage = (r: BootRead): void => this.resultOf(r.i).resolve(r);

  private readonly onClose = (): void => {
    this.closed = true;
    // What has arrived stays; what has not will not.
    for (const d of this.results.values()) d.resolve(undefined);
  };
}
