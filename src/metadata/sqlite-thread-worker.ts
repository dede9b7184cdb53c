/**
 * The thread of `SqliteThreadStore`: one `SqliteMetadataStore` (one better-sqlite3 connection)
 * answering the host's calls in the order they come. Its synchronous work (a commit's fsync, a
 * wait for another process's write lock) holds this thread, never the host's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import { SqliteMetadataStore, type SqliteMetadataStoreOptions } from './sqlite-store.js';
import { isStoreMethod, type StoreCall, type StoreReply } from './sqlite-thread-protocol.js';

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
    if (method === 'listSsoRanges') {
      // A node's ranges go packed (see packed-ranges.ts), moved: the host's share is unpacking.
      const packed = await store.listSsoRangesPacked(args[0] as number[]);
      port.postMessage({ kind: 'reply', id, ok: true, value: packed } satisfies StoreReply, [packed.ranges.buffer as ArrayBuffer]);
      return;
    }
    const fn = store[method] as (...a: unknown[]) => Promise<unknown>;
    const value = await fn.apply(store, args);
    send({ kind: 'reply', id, ok: true, value });
  } catch (err) {
    send({ kind: 'reply', id, ok: false, error: serializeError(err) });
  }
}
