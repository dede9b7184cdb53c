/**
 * s3-stream-compactor: the one public surface. Names in the README's "Embedding" section are stable.
 */
export * from './errors.js';

export {
  encodeObject,
  decodeObject,
  objectKey,
  parseObjectKey,
  readObjectIndex,
  regroupIndex,
  encodeDataBlock,
  ObjectWriter,
  type StreamRecord,
  type IndexEntry,
} from './format/index.js';

export { S3Storage, createS3Client, type S3StorageOptions } from './storage/index.js';
export type { ObjectStorage, RangeSink, S3StorageConfig, ObjectInfo, MultipartUploadInfo, CompletedPart, CreatedUpload, RequestOptions } from './storage/types.js';

export { SqliteMetadataStore, type SqliteMetadataStoreOptions, SqliteThreadStore, type SqliteThreadStoreOptions, PostgresMetadataStore, type PostgresMetadataStoreOptions } from './metadata/index.js';
export type * from './metadata/types.js';

export { uploadStreamSetObject, type UploadStreamSetObjectOptions, type UploadedStreamSetObject } from './ingest/upload-sso.js';
export { readStream, type ReadStreamOptions } from './ingest/read-stream.js';

export { planCompaction, checkCoverage, formatPlan, resolvePlannerOptions, DEFAULT_PLANNER_OPTIONS } from './plan/index.js';
export type { CompactionPlan, PlannerOptions } from './plan/types.js';

export { Compactor } from './compactor/compactor.js';
export { COMPACTOR_DEFAULTS, type CompactorOptions } from './compactor/options.js';
export type { CompactorEvent, CompactionReport } from './compactor/events.js';
export { collectGarbage, type GarbageCollectionOptions, type GarbageCollectionReport } from './compactor/gc.js';

export { attachMetrics, startMetricsServer, MetricsRegistry, createLogger } from './observability/index.js';
