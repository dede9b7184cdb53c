/** The messages between `SqliteThreadStore` and its thread. */
import type { SerializedError } from '../errors.js';
import type { MetadataStore } from './types.js';

export type StoreMethod = Exclude<keyof MetadataStore, 'close'>;

/** The methods that change the database: a call lost with the thread may or may not have landed. */
export const WRITE_METHODS: ReadonlySet<StoreMethod> = new Set<StoreMethod>([
  'createStream',
  'trimStream',
  'deleteStream',
  'closeStream',
  'prepareObjectIds',
  'commitStreamSetObject',
  'completeDeletions',
  'quarantineObject',
  'releaseQuarantined',
  'acquireNodeLease',
  'releaseNodeLease',
  'claimNode',
]);

const READ_METHODS: ReadonlySet<StoreMethod> = new Set<StoreMethod>([
  'getStreams',
  'listStreams',
  'listStreamSetObjects',
  'listSsoRanges',
  'getStreamsOfNode',
  'listStreamObjects',
  'listAllLiveObjects',
  'listPendingDeletions',
  'isObjectKnown',
  'listExpiredNodes',
  'listQuarantined',
]);

export function isStoreMethod(m: unknown): m is StoreMethod {
  return WRITE_METHODS.has(m as StoreMethod) || READ_METHODS.has(m as StoreMethod);
}

export interface StoreCall {
  id: number;
  method: StoreMethod | 'close';
  args: unknown[];
}

export type StoreReply =
  | { kind: 'ready' }
  | { kind: 'failed'; error: SerializedError }
  | { kind: 'reply'; id: number; ok: true; value: unknown }
  | { kind: 'reply'; id: number; ok: false; error: SerializedError };
