/**
 * One S3 storage per worker thread, kept between the actors the thread runs: the planner and
 * the pipeline of a run, and the runs after it. Its client and its sockets stay warm; a run no
 * longer pays for a new client and new connections at each of its actors' starts.
 *
 * A thread runs one actor at a time, so the storage is replaced (and the old one closed) only
 * between actors: when the configuration changes (new credentials, say). The thread's end
 * closes its sockets with it.
 */
import type { S3Storage } from '../storage/s3-storage.js';
import type { S3StorageConfig } from '../storage/types.js';

let current: { key: string; storage: S3Storage } | undefined;

/** The thread's storage for `config`: the one kept from an earlier actor when the configuration is the same. */
export async function threadStorage(config: S3StorageConfig): Promise<S3Storage> {
  const key = configKey(config);
  if (current?.key === key) return current.storage;
  // Loaded on demand: the SDK is most of a cold worker's start.
  const { S3Storage } = await import('../storage/s3-storage.js');
  current?.storage.close();
  current = { key, storage: S3Storage.fromConfig(config) };
  return current.storage;
}

/**
 * Every field but the bandwidth limiter's shared memory, which arrives as a new object with
 * each message: a thread serves one compactor, whose limiter never changes.
 */
function configKey(config: S3StorageConfig): string {
  return JSON.stringify(config, (k, v: unknown) => (k === 'bandwidth' ? true : v));
}
