import { BandwidthLimiter } from './bandwidth.js';
import { AbortError, StateError, StorageError, type StorageErrorCode } from '../errors.js';
import { objectKey } from '../format/keys.js';
import { S3_MIN_PART_SIZE } from './part-size.js';
import { instrumentClient, RequestSampleSender, type S3RequestListener } from './request-samples.js';
import { abortReason, linkedController, raceAbort } from '../util/async.js';
import type {
  CompletedPart,
  CreatedUpload,
  MultipartUploadInfo,
  ObjectInfo,
  ObjectStorage,
  RangeSink,
  RequestOptions,
  S3StorageConfig,
  WriteOptions,
  RangeCursor,
} from './types.js';
import {
  createS3Client,
  DEFAULT_REGION,
  HeadObjectCommand,
  settingsOf,
  validateOptions,
  type ResolvedSettings,
  type S3Client,
  type S3StorageOptions,
} from './s3-client.js';
import { describeTarget, toStorageError, type ErrorContext } from './s3-errors.js';
import { fetchRange, unpooled, type RangeIo } from './fetch-range.js';
import { openRangeCursor } from './range-cursor.js';
import { abortMultipartUpload, completeMultipartUpload, createMultipartUpload, etagOf, putObject, uploadPart, type WriteIo } from './s3-writes.js';
import { workerConfigOf } from './s3-worker-config.js';
import { deleteObjects, listMultipartUploads, listObjects, type ListOptions } from './s3-listing.js';

export type { S3StorageOptions } from './s3-client.js';


// ---------------------------------------------------------------------------------------------
// Storage

export class S3Storage implements ObjectStorage {
  readonly bucket: string;
  readonly namespace: string;
  readonly minPartSize: number;
  readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly settings: ResolvedSettings;
  private readonly options: S3StorageOptions;
  private readonly endpointForMessages: string | undefined;
  private closed = false;
  private readonly requestListeners = new Set<S3RequestListener>();
  private readonly uninstrument: () => void;
  private sampleSender: RequestSampleSender | undefined;
  /** The compactor's bandwidth limit, when its threads were given one (`S3StorageConfig.bandwidth`). */
  private bandwidth: BandwidthLimiter | undefined;
  /** What fetch-range's GETs use of this storage. */
  private readonly rangeIo: RangeIo;
  /** What the writes (s3-writes.ts) use of this storage. */
  private readonly writeIo: WriteIo;

  constructor(options: S3StorageOptions) {
    validateOptions(options);
    this.options = { ...options };
    this.bucket = options.bucket;
    this.namespace = options.namespace;
    this.minPartSize = options.minPartSize ?? S3_MIN_PART_SIZE;
    this.settings = settingsOf(options);
    this.rangeIo = {
      bucket: this.bucket,
      settings: this.settings,
      send: (operation, key, command, signal, use) => this.send(operation, key, command, signal, use),
      storageError: (code, operation, key, message) => this.storageError(code, operation, key, message),
      err: (err, operation, key) => this.err(err, operation, key),
      takeBandwidth: (bytes, signal, operation, key) => this.takeBandwidth(bytes, signal, operation, key),
    };
    this.writeIo = { ...this.rangeIo, etagNow: (key, signal) => etagOf(this.client, this.bucket, key, signal) };
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
      this.endpointForMessages = undefined;
    } else {
      this.client = createS3Client({
        bucket: options.bucket,
        namespace: options.namespace,
        region: options.region ?? process.env.AWS_REGION ?? DEFAULT_REGION,
        ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
        ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
        ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
        ...this.settings,
      });
      this.ownsClient = true;
      this.endpointForMessages = options.endpoint;
    }
    this.uninstrument = instrumentClient(this.client, (sample) => {
      for (const l of this.requestListeners) l(sample);
    });
  }

  /**
   * Told about every S3 request attempt of this storage (operation, latency, error code), for
   * metrics. Returns the unsubscriber.
   */
  onRequest(listener: S3RequestListener): () => void {
    this.requestListeners.add(listener);
    return () => this.requestListeners.delete(listener);
  }

  /** Builds a storage (with its own client) from plain configuration, e.g. in a worker thread. */
  static fromConfig(config: S3StorageConfig): S3Storage {
    const storage = new S3Storage({
      bucket: config.bucket,
      namespace: config.namespace,
      region: config.region,
      ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
      ...(config.forcePathStyle !== undefined ? { forcePathStyle: config.forcePathStyle } : {}),
      ...(config.credentials !== undefined ? { credentials: config.credentials } : {}),
      ...(config.requestTimeoutMs !== undefined ? { requestTimeoutMs: config.requestTimeoutMs } : {}),
      ...(config.maxAttempts !== undefined ? { maxAttempts: config.maxAttempts } : {}),
      ...(config.retryBaseDelayMs !== undefined ? { retryBaseDelayMs: config.retryBaseDelayMs } : {}),
    });
    if (config.bandwidth !== undefined) storage.bandwidth = new BandwidthLimiter(config.bandwidth);
    if (config.requestsChannel !== undefined) {
      storage.sampleSender = new RequestSampleSender(config.requestsChannel);
      storage.onRequest(storage.sampleSender.push);
    }
    return storage;
  }

  keyOf(objectId: number): string {
    return objectKey(objectId, this.namespace);
  }

  // -- plumbing -------------------------------------------------------------------------------

  private ctx(): ErrorContext {
    return { bucket: this.bucket, ...(this.endpointForMessages !== undefined ? { endpoint: this.endpointForMessages } : {}) };
  }

  private err(err: unknown, operation: string, key?: string): StorageError | AbortError {
    return toStorageError(err, operation, key, this.ctx());
  }

  /**
   * Sends one command (the SDK retries it) with a per-call child signal, so a caller's signal
   * holds one listener per call at most and loses it when the call ends. `use` runs while the
   * child signal is still live (a body read).
   */
  private async send<O, R>(
    operation: string,
    key: string | undefined,
    command: object,
    signal: AbortSignal | undefined,
    use: (out: O, signal: AbortSignal) => Promise<R> | R,
  ): Promise<R> {
    if (this.closed) throw new StateError('ERR_CLOSED', `${describeTarget(operation, key, this.ctx())}: the storage is closed`);
    if (signal?.aborted) throw this.err(abortReason(signal), operation, key);
    const { controller, dispose } = linkedController(signal);
    try {
      const out = (await raceAbort(
        this.client.send(command as never, { abortSignal: controller.signal as never }) as Promise<unknown>,
        controller.signal,
      )) as O;
      return await use(out, controller.signal);
    } catch (err) {
      throw this.err(err, operation, key);
    } finally {
      dispose();
    }
  }

  private storageError(code: StorageErrorCode, operation: string, key: string, message: string, retryable = false, cause?: unknown) {
    return new StorageError(code, `${describeTarget(operation, key, this.ctx())}: ${message}`, { operation, key }, {
      retryable,
      ...(cause !== undefined ? { cause } : {}),
    });
  }

  /** Waits for the bandwidth limit (when there is one); an abort while waiting is this request's, typed. */
  private async takeBandwidth(bytes: number, signal: AbortSignal | undefined, operation: string, key: string): Promise<void> {
    if (!this.bandwidth) return;
    try {
      await this.bandwidth.take(bytes, signal);
    } catch (e) {
      throw this.err(e, operation, key);
    }
  }


  // -- ObjectStorage --------------------------------------------------------------------------

  /** Returns a Uint8Array over its own ArrayBuffer (byteOffset 0): transferable with zero copies. */
  async getRange(key: string, start: number, end: number, opts: RequestOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new StorageError(
        'ERR_STORAGE_INVALID_REQUEST',
        `GetObject s3://${this.bucket}/${key}: invalid range [${start}, ${end}): expected integers 0 <= start <= end`,
        { operation: 'GetObject', key },
      );
    }
    if (end === start) {
      if (opts.signal?.aborted) throw this.err(abortReason(opts.signal), 'GetObject', key);
      return unpooled(0);
    }
    return fetchRange(this.rangeIo, 'GetObject', key, start, end, opts.signal);
  }

  /**
   * Bytes [start, end) of an object, each written once into `sink` at its position in the range
   * (a resumed body writes from where the cut one stopped): the caller decides where they land.
   */
  async getRangeInto(key: string, start: number, end: number, sink: RangeSink, opts: RequestOptions = {}): Promise<void> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || sink.byteLength !== end - start) {
      throw new StorageError(
        'ERR_STORAGE_INVALID_REQUEST',
        `GetObject s3://${this.bucket}/${key}: invalid range [${start}, ${end}) for a sink of ${sink.byteLength} bytes: expected integers 0 <= start <= end, end - start bytes`,
        { operation: 'GetObject', key },
      );
    }
    if (end === start) {
      if (opts.signal?.aborted) throw this.err(abortReason(opts.signal), 'GetObject', key);
      return;
    }
    await fetchRange(this.rangeIo, 'GetObject', key, start, end, opts.signal, sink);
  }

  openRange(key: string, start: number, end: number): RangeCursor {
    if (this.closed) throw new StateError('ERR_CLOSED', `${describeTarget('GetObject', key, this.ctx())}: the storage is closed`);
    return openRangeCursor(this.rangeIo, key, start, end);
  }

  async getObject(key: string, opts: RequestOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
    return fetchRange(this.rangeIo, 'GetObject', key, 0, undefined, opts.signal);
  }

  async headObject(key: string, opts: RequestOptions = {}): Promise<ObjectInfo | undefined> {
    try {
      return await this.send('HeadObject', key, new HeadObjectCommand({ Bucket: this.bucket, Key: key }), opts.signal, (out: {
        ContentLength?: number;
        LastModified?: Date;
      }) => ({ key, size: out.ContentLength ?? 0, lastModified: out.LastModified }));
    } catch (err) {
      if (err instanceof StorageError && err.code === 'ERR_STORAGE_NOT_FOUND') {
        // HEAD has no body: S3 answers a missing key (and a missing bucket) with a bare 404.
        return undefined;
      }
      throw err;
    }
  }

  async putObject(key: string, body: Uint8Array, opts: WriteOptions = {}): Promise<void> {
    return putObject(this.writeIo, key, body, opts);
  }

  async createMultipartUpload(key: string, opts: RequestOptions = {}): Promise<string> {
    return (await createMultipartUpload(this.writeIo, key, opts)).uploadId;
  }

  async startMultipartUpload(key: string, opts: RequestOptions = {}): Promise<CreatedUpload> {
    return createMultipartUpload(this.writeIo, key, opts);
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array, opts: RequestOptions = {}): Promise<CompletedPart> {
    return uploadPart(this.writeIo, key, uploadId, partNumber, body, opts);
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[], opts: WriteOptions = {}): Promise<void> {
    return completeMultipartUpload(this.writeIo, key, uploadId, parts, opts);
  }

  async abortMultipartUpload(key: string, uploadId: string, opts: RequestOptions = {}): Promise<void> {
    return abortMultipartUpload(this.writeIo, key, uploadId, opts);
  }

  /** `pageSize` (S3Storage only): uploads per ListMultipartUploads page, default the server's (1000). */
  async listMultipartUploads(opts: ListOptions = {}): Promise<MultipartUploadInfo[]> {
    return listMultipartUploads(this.rangeIo, opts);
  }

  /** `pageSize` (S3Storage only): keys per ListObjectsV2 page, default the server's (1000). */
  async listObjects(opts: ListOptions = {}): Promise<ObjectInfo[]> {
    return listObjects(this.rangeIo, opts);
  }

  async deleteObjects(keys: readonly string[], opts: RequestOptions = {}): Promise<void> {
    return deleteObjects(this.rangeIo, keys, opts);
  }

  /** Plain configuration from which a worker thread builds its own storage (`fromConfig`). */
  async workerConfig(): Promise<S3StorageConfig> {
    const base = { bucket: this.bucket, namespace: this.namespace, settings: this.settings };
    return workerConfigOf(this.ownsClient ? { ...base, options: this.options } : { ...base, client: this.client });
  }

  /** Posts the request samples not sent yet: an actor's last requests reach the metrics when it ends. */
  flushRequestSamples(): void {
    this.sampleSender?.flush();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sampleSender?.close();
    this.requestListeners.clear();
    this.uninstrument();
    if (this.ownsClient) this.client.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
