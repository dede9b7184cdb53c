/**
 * Uploader actor: one upload per output object, from whole parts the merger hands it, in any
 * order. An output below one part goes up as one PutObject at its close; a larger one as a
 * multipart upload whose last part (the data after the last full part, and the trailer) comes
 * with the close. Bytes of an output not yet in a whole part (the SSO's tail between iterations)
 * stay with the merger, counted in the budget, and the end of an iteration never waits for them:
 * only the close of the object uploads them (the seed's bug). Requests retry in the S3 client
 * alone (one retry layer per request); a request that still fails reaches the supervisor at
 * once, which restarts the iteration.
 */
import { CompactorError, toCompactorError } from '../errors.js';
import { destKey, type Dest, type DurableUpload, type MergerToUploader, type OutputSpec } from '../messages/pipeline.js';
import type { CompletedPart, CreatedUpload, ObjectStorage } from '../storage/types.js';
import { free } from '../util/freeable.js';
import type { BudgetView, Reporter } from './io.js';

interface OutputState {
  spec: OutputSpec;
  uploadId: string | undefined;
  parts: CompletedPart[];
  /** Data bytes in the complete prefix of full (non-final) parts: where a restart resumes. */
  durableBytes: number;
  /** Numbers of completed full parts. The final part is never durable: a restart redoes it. */
  fullPartsDone: Set<number>;
  /** This output's part uploads in flight: its completion waits for them. */
  uploads: Set<Promise<void>>;
  /** The multipart upload's creation, once asked for (`begin`, or the first part). */
  creating: Promise<string> | undefined;
}

export interface UploaderSettings {
  partSize: number;
  partsInFlight: number;
}

export class Uploader {
  private readonly outputs = new Map<string, OutputState>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Multipart uploads being created ahead of their first part (`begin`). */
  private readonly creations = new Set<Promise<void>>();
  /** Budget bytes received and not yet uploaded: released here on failure. */
  private held = 0;
  private failure: CompactorError | undefined;

  constructor(
    outputs: readonly OutputSpec[],
    resume: DurableUpload | undefined,
    private readonly storage: ObjectStorage,
    private readonly budget: BudgetView,
    private readonly reporter: Reporter,
    private readonly settings: UploaderSettings,
    private readonly signal: AbortSignal,
    /** Gives the merger back credit for bytes that left this actor. */
    private readonly onReleased: (bytes: number) => void,
    /** Called once with the first failure, as soon as it happens. */
    private readonly onFailure: (err: CompactorError) => void,
  ) {
    for (const spec of outputs) {
      const r = spec.dest.kind === 'sso' ? resume : undefined;
      this.outputs.set(destKey(spec.dest), {
        spec,
        uploadId: r?.uploadId,
        parts: r ? [...r.parts] : [],
        durableBytes: r?.durableBytes ?? 0,
        fullPartsDone: new Set(r?.parts.map((p) => p.partNumber) ?? []),
        uploads: new Set(),
        creating: undefined,
      });
    }
  }

  /**
   * Creates the multipart uploads of the outputs of a part or more now, while the first
   * iteration reads: its first whole part does not wait for the round trip.
   */
  begin(): void {
    for (const s of this.outputs.values()) {
      if (s.uploadId !== undefined || s.spec.dataSize < this.settings.partSize) continue;
      // Not a part: it does not take one of `partsInFlight`.
      const p = this.upload(s).then(() => {}, (err: unknown) => this.fail(err));
      this.creations.add(p);
      void p.finally(() => this.creations.delete(p));
    }
  }

  /** The output's multipart upload id, created once. */
  private upload(s: OutputState): Promise<string> {
    if (s.uploadId !== undefined) return Promise.resolve(s.uploadId);
    s.creating ??= this.create(s.spec.key).then(({ uploadId, attempts }) => {
      s.uploadId = uploadId;
      this.reporter.report({ type: 'upload.started', dest: s.spec.dest, key: s.spec.key, uploadId, attempts });
      return uploadId;
    });
    return s.creating;
  }

  private async create(key: string): Promise<CreatedUpload> {
    const opts = { signal: this.signal };
    if (this.storage.startMultipartUpload) return this.storage.startMultipartUpload(key, opts);
    return { uploadId: await this.storage.createMultipartUpload(key, opts), attempts: Number.POSITIVE_INFINITY };
  }

  async handle(msg: MergerToUploader): Promise<void> {
    this.throwIfFailed();
    switch (msg.type) {
      case 'part':
        this.held += msg.dataBytes;
        return this.startPart(this.state(msg.dest), msg.partNumber, msg.body, msg.dataBytes, false);
      case 'close':
        this.held += msg.dataBytes;
        return this.close(this.state(msg.dest), msg.partNumber, msg.body, msg.dataBytes);
      case 'iteration.end':
        await this.settle();
        this.throwIfFailed();
        this.reporter.report({ type: 'iteration.done', iteration: msg.iteration });
        return;
    }
  }

  private state(dest: Dest): OutputState {
    const s = this.outputs.get(destKey(dest));
    if (!s) throw new CompactorError('ERR_INTERNAL', `uploader has no output ${destKey(dest)}`);
    return s;
  }

  /** Starts one part upload, waiting first while `partsInFlight` are already running. */
  private async startPart(s: OutputState, partNumber: number, body: Uint8Array, dataBytes: number, final: boolean): Promise<void> {
    while (this.inFlight.size >= this.settings.partsInFlight) {
      await Promise.race(this.inFlight);
      this.throwIfFailed();
    }
    const uploadId = await this.upload(s);
    const bytes = body.byteLength;
    const p = this.storage.uploadPart(s.spec.key, uploadId, partNumber, body, { signal: this.signal }).then(
      (part) => {
        s.parts.push(part);
        // Durable: its memory goes back now, not at the next GC (only after success: a failed
        // request's socket may still be writing it).
        free(body);
        this.releaseBytes(dataBytes);
        if (!final) {
          // Parts may finish out of order: durable is the end of the longest completed prefix.
          s.fullPartsDone.add(partNumber);
          let k = s.durableBytes / this.settings.partSize;
          while (s.fullPartsDone.has(k + 1)) k++;
          s.durableBytes = k * this.settings.partSize;
        }
        this.reporter.report({ type: 'part.done', dest: s.spec.dest, partNumber, etag: part.etag, durableBytes: s.durableBytes, bytes });
      },
      (err: unknown) => this.fail(err),
    );
    this.track(p, s);
  }

  /** The output's last bytes: the whole object below one part, else its last part and the completion. */
  private async close(s: OutputState, partNumber: number, body: Uint8Array, dataBytes: number): Promise<void> {
    const { dest, key, dataSize } = s.spec;
    const objectSize = dataSize + body.byteLength - dataBytes;
    if (dataSize < this.settings.partSize && s.uploadId === undefined) {
      const p = this.storage.putObject(key, body, { signal: this.signal, ifNoneMatch: true }).then(
        () => {
          const putBytes = body.byteLength;
          free(body);
          this.releaseBytes(dataBytes);
          this.reporter.report({ type: 'object.done', dest, key, objectSize, putBytes });
        },
        (err: unknown) => this.fail(err),
      );
      this.track(p, s);
      return;
    }
    await this.startPart(s, partNumber, body, dataBytes, true);
    const uploadId = s.uploadId!;
    // Every part of this output is in flight or done by now (the merger hands on the close
    // last); a snapshot of its own uploads, so this never waits on itself.
    const parts$ = Promise.allSettled([...s.uploads]);
    const p = parts$.then(async () => {
      this.throwIfFailed();
      const parts = [...s.parts].sort((a, b) => a.partNumber - b.partNumber);
      await this.storage.completeMultipartUpload(key, uploadId, parts, { signal: this.signal, ifNoneMatch: true });
      this.reporter.report({ type: 'object.done', dest, key, objectSize, putBytes: 0 });
    }).catch((err: unknown) => this.fail(err));
    this.track(p);
  }

  /** Waits for everything in flight (not for bytes still with the merger: those wait for their close). */
  async settle(): Promise<void> {
    while (this.inFlight.size + this.creations.size > 0) await Promise.allSettled([...this.inFlight, ...this.creations]);
  }

  private track(p: Promise<void>, s?: OutputState): void {
    this.inFlight.add(p);
    s?.uploads.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      s?.uploads.delete(p);
    });
  }

  private releaseBytes(n: number): void {
    if (n <= 0) return;
    this.held -= n;
    this.budget.release(n);
    this.onReleased(n);
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    this.failure = toCompactorError(err);
    this.onFailure(this.failure);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Gives back every byte this uploader holds. Safe to call more than once. */
  releaseHeld(): void {
    if (this.held > 0) this.budget.release(this.held);
    this.held = 0;
  }

  /** Uploads this actor started that are not complete: the supervisor aborts them on failure. */
  openUploads(): { key: string; uploadId: string }[] {
    const open: { key: string; uploadId: string }[] = [];
    for (const s of this.outputs.values()) if (s.uploadId !== undefined) open.push({ key: s.spec.key, uploadId: s.uploadId });
    return open;
  }
}
