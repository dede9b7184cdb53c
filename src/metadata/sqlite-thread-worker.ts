/**
 * The thread of `SqliteThreadStore`: one `SqliteMetadataStore` (one better-sqlite3 connection)
 * answering the host's calls in the order they come. Its synchronous work (a commit's fsync, a
 * wait for another process's write lock) holds this thread, never the host's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import { packRanges } from './packed-ranges.js';
import { SqliteMetadataStore, type SqliteMetadataStoreOptions } from './sqlite-store.js';
import { isStoreMethod, type StoreCall, type StoreReply } from './sqlite-thread-protocol.js';
import type { StreamRange } from './types.js';

const port = parentPort!;
const send = (m: StoreReply) => port.postMessage(m);

let store: SqliteMetadataStore;
try {
  store = new SqliteMetadataStore(workerData.options as SqliteMetadataStoreOptions);
  send({ kind: 'ready' });
} catch (err) {
  send({ kind: 'failed', error: serializeError(err) });
  port.close();
}

port.on('message', (call: StoreCall) => {
  void answer(call);
});

async function answer({ id, method, args }: StoreCall): Promise<void> {
  try {
    if (method === 'close') {
      await store.close();
      send({ kind: 'reply', id, ok: true, value: undefined });
      port.close();
      return;
    }
    if (!isStoreMethod(method)) throw new TypeError(`no MetadataStore method ${String(method)}`);
    const fn = store[method] as (...a: unknown[]) => Promise<unknown>;
    const value = await fn.apply(store, args);
    if (method === 'listSsoRanges') {
      // A node's ranges go packed (see packed-ranges.ts): the host's share is unpacking them.
      const byObject = value as Map<number, StreamRange[]>;
      const packed = packRanges([...byObject.values()]);
      const reply: StoreReply = { kind: 'reply', id, ok: true, value: { packedRanges: { objectIds: [...byObject.keys()], ...packed } } };
      port.postMessage(reply, [packed.ranges.buffer as ArrayBuffer]);
      return;
    }
    send({ kind: 'reply', id, ok: true, value });
  } catch (err) {
    send({ kind: 'reply', id, ok: false, error: serializeError(err) });
  }
}
