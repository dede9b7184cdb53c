/**
 * One sample per S3 request attempt (operation, time to the response headers, error code), for
 * latency and error metrics. Requests run on every thread of a compactor: worker threads batch
 * their samples onto a BroadcastChannel that the compactor's thread listens to.
 */
import { BroadcastChannel } from 'node:worker_threads';
import type { S3Client } from '@aws-sdk/client-s3';

export interface S3RequestSample {
  /** The S3 operation, e.g. 'GetObject', 'UploadPart'. */
  operation: string;
  /** Until the response headers (a GET's body streams after this). */
  durationMs: number;
  /** Set when the attempt failed: the S3 error code (SlowDown, NoSuchKey, ...) or the network error (ECONNRESET, TimeoutError). */
  error?: string;
}

export type S3RequestListener = (sample: S3RequestSample) => void;

let names = 0;

/**
 * Times every attempt of every command sent by `client` (the middleware sits inside the SDK's
 * retry loop, so a retried request gives one sample per attempt). Returns the remover.
 */
export function instrumentClient(client: S3Client, listener: S3RequestListener): () => void {
  const name = `s3sc-request-samples-${++names}`;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String((context as { commandName?: string }).commandName ?? 'Unknown').replace(/Command$/, '');
      const t0 = performance.now();
      try {
        const out = await next(args);
        listener({ operation, durationMs: performance.now() - t0 });
        return out;
      } catch (err) {
        listener({ operation, durationMs: performance.now() - t0, error: errorCodeOf(err) });
        throw err;
      }
    },
    { step: 'deserialize', name, priority: 'low' },
  );
  return () => {
    client.middlewareStack.remove(name);
  };
}

function errorCodeOf(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; Code?: unknown };
  // Network errors carry a system code (ECONNRESET); service errors their S3 code as the name.
  if (typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code)) return e.code;
  if (typeof e.Code === 'string' && e.Code) return e.Code;
  if (typeof e.name === 'string' && e.name && e.name !== 'Error') return e.name;
  return 'Unknown';
}

/** How often a worker thread sends its batch of samples. */
const FLUSH_MS = 200;

/** A worker thread's end: buffers samples and posts them in batches (never keeps the thread alive). */
export class RequestSampleSender {
  private readonly channel: BroadcastChannel;
  private batch: S3RequestSample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(channelName: string) {
    this.channel = new BroadcastChannel(channelName);
    this.channel.unref();
  }

  readonly push: S3RequestListener = (sample) => {
    this.batch.push(sample);
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  };

  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.channel.postMessage(batch);
  }

  close(): void {
    this.flush();
    this.channel.close();
  }
}

/** The compactor's end: every batch posted on `channelName` by any thread of this process. */
export function listenRequestSamples(channelName: string, onBatch: (samples: S3RequestSample[]) => void): () => void {
  const channel = new BroadcastChannel(channelName);
  channel.unref();
  channel.onmessage = (e: unknown) => {
    const data = (e as { data?: unknown }).data;
    if (Array.isArray(data)) onBatch(data as S3RequestSample[]);
  };
  return () => channel.close();
}
