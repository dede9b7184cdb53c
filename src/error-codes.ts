/**
 * Every error code of the library, by error class: the values of `CompactorError.code` a host can
 * switch on. Stable: a code is never reused for another meaning.
 */

export type FormatErrorCode =
  | 'ERR_FORMAT_TRUNCATED'
  | 'ERR_FORMAT_FOOTER_MAGIC'
  | 'ERR_FORMAT_BLOCK_MAGIC'
  | 'ERR_FORMAT_RECORD_MAGIC'
  | 'ERR_FORMAT_INDEX_BOUNDS'
  | 'ERR_FORMAT_LENGTH_MISMATCH'
  | 'ERR_FORMAT_UNSAFE_INTEGER'
  | 'ERR_FORMAT_INVALID_INPUT';

export type StorageErrorCode =
  | 'ERR_STORAGE_UNAVAILABLE' // 5xx, SlowDown, connection reset/refused: retryable
  | 'ERR_STORAGE_TIMEOUT' // request or socket timeout: retryable
  | 'ERR_STORAGE_NOT_FOUND' // NoSuchKey, NoSuchBucket, NoSuchUpload
  | 'ERR_STORAGE_ACCESS_DENIED'
  | 'ERR_STORAGE_PRECONDITION' // conditional write refused
  | 'ERR_STORAGE_INVALID_REQUEST' // EntityTooSmall, InvalidPart, other 4xx
  | 'ERR_STORAGE_CONTENT' // body shorter/longer than asked
  | 'ERR_STORAGE_UNKNOWN';

export type MetadataErrorCode =
  | 'ERR_METADATA_NOT_A_DATABASE'
  | 'ERR_METADATA_SCHEMA_TOO_NEW'
  | 'ERR_METADATA_OBJECT_NOT_LIVE'
  | 'ERR_METADATA_STREAM_NOT_FOUND'
  | 'ERR_METADATA_STREAM_EXISTS'
  | 'ERR_METADATA_INVALID_COMMIT'
  | 'ERR_METADATA_IO'
  | 'ERR_METADATA_INDEX_MISMATCH' // metadata gives an object a range its index does not hold
  | 'ERR_METADATA_NODE_BUSY' // another compactor holds the node's lease
  | 'ERR_METADATA_CLOSED'
  | 'ERR_METADATA_READ_ONLY' // a write to a store opened read-only
  | 'ERR_METADATA_FENCED' // a commit under a stale compactor epoch: another compactor claimed the node
  | 'ERR_METADATA_UNSAFE_INTEGER' // an int8 value beyond 2^53 in the database
  | 'ERR_METADATA_OUTCOME_UNKNOWN' // the connection broke during COMMIT: the change may or may not be in
  | 'ERR_METADATA_SCHEMA_OLD'; // a read-only open of a file that needs a migration first

export type PlanErrorCode = 'ERR_PLAN_OVERLAP' | 'ERR_PLAN_MEMORY_LIMIT' | 'ERR_PLAN_COVERAGE' | 'ERR_PLAN_INVALID';

export type WorkerErrorCode = 'ERR_WORKER_CRASHED' | 'ERR_WORKER_EXITED' | 'ERR_WORKER_UNRESPONSIVE';

/** Codes of the classes that have only a few: AbortError, TimeoutError, StateError, GcRefusedError, OptionsError. */
export type OtherErrorCode = 'ERR_ABORTED' | 'ERR_TIMEOUT' | 'ERR_CLOSED' | 'ERR_BUSY' | 'ERR_GC_METADATA_MISMATCH' | 'ERR_GC_TOO_MANY' | 'ERR_INVALID_OPTION';

/**
 * A plain CompactorError: anything else thrown, wrapped (ERR_INTERNAL, the original its cause), or
 * a broken invariant of the actor runtime's credits and memory budget (a bug: report it).
 */
export type InternalErrorCode = 'ERR_INTERNAL' | 'ERR_CREDIT_GRANT' | 'ERR_CREDIT_TOO_LARGE' | 'ERR_MEMORY_RELEASE' | 'ERR_MEMORY_REQUEST_TOO_LARGE';

export type CompactorErrorCode = FormatErrorCode | StorageErrorCode | MetadataErrorCode | PlanErrorCode | WorkerErrorCode | OtherErrorCode | InternalErrorCode;

/**
 * Why planning left a source out and quarantined it (`skipped[].code`, `quarantined[].code` of a
 * report), besides the FormatError and PlanError codes of the damage found.
 */
export type QuarantineCode = 'ERR_PLAN_INVALID_INDEX' | 'ERR_PLAN_METADATA_MISMATCH';
