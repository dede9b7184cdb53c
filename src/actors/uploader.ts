/**
 * Uploader actor: one upload per output object. Parts are cut at exactly `partSize`; an object
 * that never fills a part goes up as one PutObject at its close. Bytes of an output not yet in a
 * part (the SSO's tail between iterations) stay here, counted in the budget, and the end of an
 * iteration never waits for them: only the close of the object uploads them (the seed's bug).
 * Requests retry in the S3 client alone (one retry layer per request); a request that still fails
 * reaches the supervisor at once, which restarts the iteration.
 */
import { CompactorError, toCompactorError } from '../errors.js';
import { destKey, type Dest, type DurableUpload, type MergerToUploader, type OutputSpec } from '../messages/pipeline.js';
import type { CompletedPart, ObjectStorage } from '../storage/types.js';
import type { BudgetView, Reporter } from './io.js';

interface OutputState {
  spec: OutputSpec;
  uploadId: string | undefined;
  parts: CompletedPart[];
  nextPartNumber: number;
  /** Data bytes in the complete prefix of full (non-final) parts: where a restart resumes. */
  durableBytes: number;
  /** Numbers of completed full parts. The final part is never durable: a restart redoes it. */
  fullPartsDone: Set<number>;
  /** Data bytes handed to part uploads (completed or in flight). */
  cutBytes: number;
  buf: Uint8Array | undefined;
  filled: number;
}

export interface UploaderSettings {
  partSize: number;
  partsInFlight: number;
}

export class Uploader {
  private readonly outputs = new Map<string, OutputState>();
  private readonly inFlight = new Set<Promise<void>>();
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
        nextPartNumber: r ? r.parts.length + 1 : 1,
        durableBytes: r?.durableBytes ?? 0,
        fullPartsDone: new Set(r?.parts.map((p) => p.partNumber) ?? []),
        cutBytes: r?.durableBytes ?? 0,
        buf: undefined,
        filled: 0,
      });
    }
  }

  async handle(msg: MergerToUploader): Promise<void> {
    this.throwIfFailed();
    switch (msg.type) {
      case 'chunk':
        return this.chunk(msg.dest, msg.destOffset, msg.pieces, msg.size);
      case 'close':
        return this.close(msg.dest, msg.trailer);
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

  private async chunk(dest: Dest, destOffset: number, pieces: readonly Uint8Array[], size: number): Promise<void> {
    const s = this.state(dest);
    this.held += size;
    if (destOffset !== s.cutBytes + s.filled) {
      throw new CompactorError('ERR_INTERNAL', `${s.spec.key}: bytes for offset ${destOffset} arrived where ${s.cutBytes + s.filled} was expected`);
    }
    const { partSize } = this.settings;
    for (const bytes of pieces) {
      let at = 0;
      while (at < bytes.byteLength) {
        // The one copy of a byte on its way: from the GET's buffer into its part. Part buffers
        // are plain ArrayBuffers, not pooled: nothing else shares their memory.
        s.buf ??= new Uint8Array(new ArrayBuffer(partSize));
        const n = Math.min(partSize - s.filled, bytes.byteLength - at);
        s.buf.set(bytes.subarray(at, at + n), s.filled);
        s.filled += n;
        at += n;
        if (s.filled === partSize) {
          const body = s.buf;
          s.buf = undefined;
          s.filled = 0;
          await this.startPart(s, body, partSize, false);
        }
      }
    }
  }

  /** Starts one part upload, waiting first while `partsInFlight` are already running. */
  private async startPart(s: OutputState, body: Uint8Array, dataBytes: number, final: boolean): Promise<void> {
    while (this.inFlight.size >= this.settings.partsInFlight) {
      await Promise.race(this.inFlight);
      this.throwIfFailed();
    }
    if (s.uploadId === undefined) {
      s.uploadId = await this.storage.createMultipartUpload(s.spec.key, { signal: this.signal });
      this.reporter.report({ type: 'upload.started', dest: s.spec.dest, key: s.spec.key, uploadId: s.uploadId });
    }
    const partNumber = s.nextPartNumber++;
    s.cutBytes += dataBytes;
    const uploadId = s.uploadId;
    const p = this.storage.uploadPart(s.spec.key, uploadId, partNumber, body, { signal: this.signal }).then(
      (part) => {
        s.parts.push(part);
        this.releaseBytes(dataBytes);
        if (!final) {
          // Parts may finish out of order: durable is the end of the longest completed prefix.
          s.fullPartsDone.add(partNumber);
          let k = s.durableBytes / this.settings.partSize;
          while (s.fullPartsDone.has(k + 1)) k++;
          s.durableBytes = k * this.settings.partSize;
        }
        this.reporter.report({ type: 'part.done', dest: s.spec.dest, partNumber, etag: part.etag, durableBytes: s.durableBytes, bytes: body.byteLength });
      },
      (err: unknown) => this.fail(err),
    );
    this.track(p);
  }

  private async close(dest: Dest, trailer: Uint8Array): Promise<void> {
    const s = this.state(dest);
    const dataBytes = s.filled;
    const body = new Uint8Array(dataBytes + trailer.byteLength);
    if (s.buf) body.set(s.buf.subarray(0, dataBytes));
    body.set(trailer, dataBytes);
    s.buf = undefined;
    s.filled = 0;
    const objectSize = s.spec.dataSize + trailer.byteLength;
    const key = s.spec.key;
    if (s.uploadId === undefined) {
      const p = this.storage.putObject(key, body, { signal: this.signal, ifNoneMatch: true }).then(
        () => {
          this.releaseBytes(dataBytes);
          this.reporter.report({ type: 'object.done', dest, key, objectSize, putBytes: body.byteLength });
        },
        (err: unknown) => this.fail(err),
      );
      this.track(p);
      return;
    }
    // The last part may be any size: the tail and the trailer go up together.
    await this.startPart(s, body, dataBytes, true);
    const uploadId = s.uploadId;
    // Every part of this output is in flight or done by now; a snapshot, so this never waits on itself.
    const parts$ = Promise.allSettled([...this.inFlight]);
    const p = parts$.then(async () => {
      this.throwIfFailed();
      const parts = [...s.parts].sort((a, b) => a.partNumber - b.partNumber);
      await this.storage.completeMultipartUpload(key, uploadId, parts, { signal: this.signal, ifNoneMatch: true });
      this.reporter.report({ type: 'object.done', dest, key, objectSize, putBytes: 0 });
    }).catch((err: unknown) => this.fail(err));
    this.track(p);
  }

  /** Waits for everything in flight (not for bytes still buffered: those wait for their close). */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
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
    for (const s of this.outputs.values()) {
      s.buf = undefined;
      s.filled = 0;
    }
  }

  /** Uploads this actor started that are not complete: the supervisor aborts them on failure. */
  openUploads(): { key: string; uploadId: string }[] {
    const open: { key: string; uploadId: string }[] = [];
    for (const s of this.outputs.values()) if (s.uploadId !== undefined) open.push({ key: s.spec.key, uploadId: s.uploadId });
    return open;
  }
}
