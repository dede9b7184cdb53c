import type { BandwidthHandle } from './bandwidth.js';
export interface RequestOptions {
  signal?: AbortSignal;
}

export interface WriteOptions extends RequestOptions {
  /**
   * Write only if no object exists at the key (If-None-Match: *): a new object never overwrites
   * another. Refused: ERR_STORAGE_PRECONDITION. A retry that finds its own object succeeds.
   */
  ifNoneMatch?: boolean;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
}

/** A multipart upload just created, and how many requests the client sent to create it. */
export interface CreatedUpload {
  uploadId: string;
  /**
   * More than one: an earlier request may have created an upload too, whose answer was lost
   * (a timeout, a reset): an upload on the key that nobody knows the id of.
   */
  attempts: number;
}

export interface MultipartUploadInfo {
  key: string;
  uploadId: string;
  initiated: Date | undefined;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date | undefined;
}

/**
 * Plain, structured-clone-able configuration from which any thread builds its own S3 client.
 * Worker threads cannot share an S3Client.
 */
export interface S3StorageConfig {
  bucket: string;
  namespace: string;
  endpoint?: string;
  region: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Per-request deadline, a stalled socket included. Default 30 000 ms. */
  requestTimeoutMs?: number;
  /** Attempts per request, the first included. Default 3. */
  maxAttempts?: number;
  /** Base delay between retries. Default 100 ms (the SDK's); tests use a few ms. */
  retryBaseDelayMs?: number;
  /** A BroadcastChannel to post request samples to (the compactor's metrics), when set. */
  requestsChannel?: string;
  /** The compactor's bandwidth limit, shared by every thread's requests (`BandwidthLimiter.handle`). */
  bandwidth?: BandwidthHandle;
}

/**
 * Where the bytes of a range GET land: a Uint8Array is one; the compactor's merger scatters them
 * straight into the parts of its outputs. Chunks come in order; a resumed body starts again
 * where the cut one stopped.
 */
export interface RangeSink {
  readonly byteLength: number;
  set(chunk: Uint8Array, offset: number): void;
}

/** One GET read in steps (`ObjectStorage.openRange`). */
export interface RangeCursor {
  readonly key: string;
  /** The next byte the GET will deliver. */
  readonly position: number;
  /** A read is in progress. */
  readonly reading: boolean;
  /** Ended (closed, or failed): it serves no more reads. */
  readonly closed: boolean;
  /** True when `read(start, end)` can be served now: not closed, not reading, `start` at or a little past `position`. */
  canRead(start: number, end: number): boolean;
  /** Bytes [start, end) into `sink` (as `sink.set(chunk, offsetInRange)`). A failure ends the cursor; a body failing mid-read is finished by a plain GET first. */
  read(start: number, end: number, sink: RangeSink, signal?: AbortSignal): Promise<void>;
  /** Ends the GET. Idempotent. */
  close(): void;
}

/** What the compactor, the ingest path and GC need from object storage. */
export interface ObjectStorage {
  readonly bucket: string;
  readonly namespace: string;
  /** Smallest multipart part (all but the last) the store accepts. Absent: S3's 5 MiB. */
  readonly minPartSize?: number;
  /** `objectKey(objectId, namespace)`. */
  keyOf(objectId: number): string;
  /** Bytes [start, end) of an object. Resumes a body cut after the headers. */
  getRange(key: string, start: number, end: number, opts?: RequestOptions): Promise<Uint8Array>;
  /** Bytes [start, end) of an object written into `sink` (as `sink.set(chunk, offsetInRange)`), not returned. */
  getRangeInto(key: string, start: number, end: number, sink: RangeSink, opts?: RequestOptions): Promise<void>;
  /**
   * A cursor over bytes [start, end) of an object: one GET serving reads of increasing ranges,
   * paused between them (optional: without it every read is its own GET).
   */
  openRange?(key: string, start: number, end: number): RangeCursor;
  getObject(key: string, opts?: RequestOptions): Promise<Uint8Array>;
  headObject(key: string, opts?: RequestOptions): Promise<ObjectInfo | undefined>;
  putObject(key: string, body: Uint8Array, opts?: WriteOptions): Promise<void>;
  createMultipartUpload(key: string, opts?: RequestOptions): Promise<string>;
  /**
   * As `createMultipartUpload`, saying how many requests it took (optional: without it, a caller
   * must assume more than one, and look for uploads it does not know of).
   */
  startMultipartUpload?(key: string, opts?: RequestOptions): Promise<CreatedUpload>;
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array, opts?: RequestOptions): Promise<CompletedPart>;
  completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[], opts?: WriteOptions): Promise<void>;
  abortMultipartUpload(key: string, uploadId: string, opts?: RequestOptions): Promise<void>;
  listMultipartUploads(opts?: RequestOptions & { prefix?: string }): Promise<MultipartUploadInfo[]>;
  listObjects(opts?: RequestOptions & { prefix?: string }): Promise<ObjectInfo[]>;
  /** Batched (1000 a request). Deleting a missing key is not an error. */
  deleteObjects(keys: readonly string[], opts?: RequestOptions): Promise<void>;
  /** Plain configuration for worker threads. */
  workerConfig(): Promise<S3StorageConfig>;
  close(): void;
}
