/**
 * The run's ledger: what the supervisor knows of a run's uploads, from the pipeline's reports
 * alone. It outlives the attempts: a restarted attempt starts from what the ledger says is safe
 * (completed outputs, and the SSO's durable parts), never from what a dead actor claimed.
 */
import type { ControlFromActor } from '../messages/control.js';
import { destKey, type DurableUpload, type PipelineReport } from '../messages/pipeline.js';

export class RunLedger {
  /** Sizes of the completed output objects, by `destKey` ('sso', 'so:<index>'). */
  readonly objectSizes = new Map<string, number>();
  /** Multipart uploads started and not completed, by `destKey`. */
  readonly open = new Map<string, { key: string; uploadId: string }>();
  /** The SSO's multipart upload: its parts (number → ETag) and its durable prefix. */
  sso: { uploadId: string; parts: Map<number, string>; durableBytes: number } | undefined;
  /**
   * A CreateMultipartUpload took more than one request: an earlier one may have created an
   * upload whose id never came back, which only a listing of the uploads finds.
   */
  createRetried = false;
  bytesRead = 0;
  /** Sizes of the completed outputs (the report's bytesWritten). */
  bytesWritten = 0;
  /** Bytes made durable by parts and PutObjects so far, retries included (the progress). */
  bytesUploaded = 0;

  /** Takes one message of the pipeline in; true when the bytes read or made durable moved (a progress event is due). */
  record(m: ControlFromActor<PipelineReport>): boolean {
    switch (m.type) {
      case 'progress':
        this.bytesRead += m.bytesRead ?? 0;
        return (m.bytesRead ?? 0) > 0;
      case 'upload.started':
        this.open.set(destKey(m.dest), { key: m.key, uploadId: m.uploadId });
        if (m.attempts !== 1) this.createRetried = true;
        if (m.dest.kind === 'sso') this.sso = { uploadId: m.uploadId, parts: new Map(), durableBytes: 0 };
        return false;
      case 'part.done':
        this.bytesUploaded += m.bytes;
        if (m.dest.kind === 'sso' && this.sso) {
          this.sso.parts.set(m.partNumber, m.etag);
          this.sso.durableBytes = Math.max(this.sso.durableBytes, m.durableBytes);
        }
        return true;
      case 'object.done':
        this.objectSizes.set(destKey(m.dest), m.objectSize);
        this.open.delete(destKey(m.dest));
        this.bytesWritten += m.objectSize;
        this.bytesUploaded += m.putBytes;
        return m.putBytes > 0;
      default:
        return false;
    }
  }

  /** The SSO's durable parts as a fresh uploader resumes them: the complete prefix only. */
  durable(partSize: number): DurableUpload | undefined {
    if (!this.sso) return undefined;
    const count = Math.floor(this.sso.durableBytes / partSize);
    const parts: { partNumber: number; etag: string }[] = [];
    for (let n = 1; n <= count; n++) parts.push({ partNumber: n, etag: this.sso.parts.get(n)! });
    return { uploadId: this.sso.uploadId, parts, durableBytes: this.sso.durableBytes };
  }

  /** Forgets the SSO's upload (aborted: a restart starts the SSO over). */
  dropSso(): void {
    this.sso = undefined;
  }
}
