export * from './types.js';
export { S3Storage } from './s3-storage.js';
export {
  createS3Client,
  type S3StorageOptions,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_REGION,
  DELETE_BATCH_SIZE,
} from './s3-client.js';
export { toStorageError } from './s3-errors.js';
