export * from './types.js';
export {
  S3Storage,
  createS3Client,
  toStorageError,
  type S3StorageOptions,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_REGION,
  DELETE_BATCH_SIZE,
} from './s3-storage.js';
