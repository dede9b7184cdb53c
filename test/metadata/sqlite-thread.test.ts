/**
 * `SqliteThreadStore` beyond the contract it shares with `SqliteMetadataStore` (contract.test.ts):
 * the host's thread keeps turning while SQLite waits, and a thread that stops answering fails its
 * calls within the deadline, typed, without taking the store down. The lock is held by a second
 * real connection to the same file, as another process sharing it would.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetadataError, OptionsError } from '../../src/errors.js';
import { SqliteMetadataStore, SqliteThreadStore } from '../../src/metadata/index.js';
import { tempDir } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/thread-store-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
let cleanup: () => void;
let path: string;
const toClose: { close(): unknown }[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('meta-thread-'));
  path = join(dir, 'meta.db');
});
afterEach(async () => {
  for (const c of toClose.splice(0)) await c.close();
  cleanup();
});

/** Another connection to the file holding its write lock until `release`. */
async function holdWriteLock(): Promise<{ release(): void }> {
  // The schema must exist first, so that the holder's transaction is the only writer.
  await new SqliteMetadataStore({ path }).close();
  const holder = new Database(path);
  toClose.push(holder);
  holder.prepare('BEGIN IMMEDIATE').run();
  return { release: () => void holder.prepare('COMMIT').run() };
}

/** Turns of the host's event loop: what a blocked host thread cannot make. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

function track<T>(p: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false;
  const promise = p.finally(() => (settled = true));
  promise.catch(() => {});
  return { settled: () => settled, promise };
}

describe('SqliteThreadStore', () => {
  it("regression: the host's event loop stood still for busyTimeoutMs while another process held the SQLite write lock", async () => {
    const lock = await holdWriteLock();
    const store = await SqliteThreadStore.open({ path, busyTimeoutMs: 60_000 });
    toClose.push(store);
    // On the host's thread (SqliteMetadataStore) this call returns only after SQLite gave up
    // waiting for the lock: settled, rejected with SQLITE_BUSY, before the loop turns once.
    const call = track(store.createStream({ streamId: 1, epoch: 0, startOffset: 0 }));
    await turns(20);
    expect(call.settled()).toBe(false);
    // The host can still act, and acting releases the lock the store's thread waits for.
    lock.release();
    await expect(call.promise).resolves.toMatchObject({ streamId: 1, startOffset: 0, state: 'opened' });
    expect(await store.getStreams([1])).toHaveLength(1);
  });

  it('a thread that stops answering fails its calls within callTimeoutMs, typed, and the next call runs on a new thread', async () => {
    const lock = await holdWriteLock();
    const store = await SqliteThreadStore.open({ path, busyTimeoutMs: 60_000, callTimeoutMs: 300 });
    toClose.push(store);
    const write = store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    const read = store.getStreams([1]);
    // Both settle while the lock is still held: the deadline ended the wait, not the lock.
    const werr = await write.catch((e: unknown) => e);
    const rerr = await read.catch((e: unknown) => e);
    expect(werr).toBeInstanceOf(MetadataError);
    expect(werr).toMatchObject({ code: 'ERR_METADATA_OUTCOME_UNKNOWN', cause: { code: 'ERR_WORKER_UNRESPONSIVE', cause: { code: 'ERR_TIMEOUT' } } });
    expect((werr as Error).message).toContain('callTimeoutMs');
    expect(rerr).toMatchObject({ code: 'ERR_METADATA_IO', retryable: true });
    lock.release();
    // The lost write may or may not have landed (its thread may finish it once the lock is free):
    // the store answers either way, on a fresh thread.
    const streams = await store.getStreams([1]);
    expect(streams.length).toBeLessThanOrEqual(1);
    await store.createStream({ streamId: 2, epoch: 0, startOffset: 0 });
    expect(await store.getStreams([2])).toHaveLength(1);
  });

  it("errors cross the thread with their class and code: the open's, a call's, and a read-only store's write", async () => {
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'this is not a database, it is a text file of some length'.repeat(100));
    const openErr = await SqliteThreadStore.open({ path: junk }).catch((e: unknown) => e);
    expect(openErr).toBeInstanceOf(MetadataError);
    expect(openErr).toMatchObject({ code: 'ERR_METADATA_NOT_A_DATABASE', message: expect.stringContaining(junk) });

    const store = await SqliteThreadStore.open({ path });
    toClose.push(store);
    await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    const dup = await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(MetadataError);
    expect(dup).toMatchObject({ code: 'ERR_METADATA_STREAM_EXISTS' });
    const bad = await store.getStreams([-1]).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OptionsError);
    expect(bad).toMatchObject({ option: 'streamIds[0]' });

    const ro = await SqliteThreadStore.open({ path, readOnly: true });
    toClose.push(ro);
    expect(await ro.getStreams([1])).toHaveLength(1);
    await expect(ro.deleteStream(1)).rejects.toMatchObject({ code: 'ERR_METADATA_READ_ONLY' });
  });

  it("a node's ranges cross packed and arrive as the store on the host's thread lists them", async () => {
    const host = new SqliteMetadataStore({ path });
    toClose.push(host);
    for (let streamId = 0; streamId < 1500; streamId++) await host.createStream({ streamId, epoch: 0, startOffset: 0 });
    const ids: number[] = [];
    for (let o = 0; o < 3; o++) {
      const objectId = await host.prepareObjectIds(1);
      // More ranges than the packing starts with room for (1 024), offsets past 2^32.
      const streamRanges = Array.from({ length: 1500 - o * 400 }, (_, streamId) => ({ streamId, startOffset: 2 ** 40 + o * 10, endOffset: 2 ** 40 + o * 10 + 10 }));
      await host.commitStreamSetObject({ nodeId: 1, objectId, objectSize: 1000, streamRanges, streamObjects: [], compactedObjectIds: [] });
      ids.push(objectId);
    }
    const store = await SqliteThreadStore.open({ path });
    toClose.push(store);
    const asked = [ids[2]!, 424_242, ids[0]!, ids[1]!];
    const packed = await store.listSsoRanges(asked);
    expect([...packed.keys()]).toEqual([ids[2], ids[0], ids[1]]);
    expect(packed).toEqual(await host.listSsoRanges(asked));
  });

  it('options are checked at the boundary, naming the option; a closed store refuses calls', async () => {
    await expect(SqliteThreadStore.open({ path, now: () => 1 } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'now' });
    await expect(SqliteThreadStore.open({ path, callTimeoutMs: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'callTimeoutMs' });
    await expect(SqliteThreadStore.open({ path: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'path' });
    await expect(SqliteThreadStore.open({ path, graceMs: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'graceMs' });
    const store = await SqliteThreadStore.open({ path });
    await store.close();
    await store.close();
    await expect(store.listStreams()).rejects.toMatchObject({ code: 'ERR_METADATA_CLOSED' });
  });

  it('an aborted open rejects with the abort', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(SqliteThreadStore.open({ path }, { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  /** Runs fixtures/thread-store-child.ts in `mode`; killed past a deadline it must not need. */
  async function child(mode: string, file: string): Promise<{ code: number | null; out: string; err: string }> {
    const c = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, file], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((resolve) => {
      const deadline = setTimeout(() => c.kill('SIGKILL'), 20_000);
      c.once('close', (n) => {
        clearTimeout(deadline);
        resolve(n);
      });
    });
    return { code, out, err };
  }

  it('a store left open keeps no process alive once its calls are answered', async () => {
    const r = await child('left-open', path);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject([{ streamId: 7 }]);
  });

  it('regression: a failed open let the process end mid-await, exit code 0 and nothing said', async () => {
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'not a database '.repeat(400));
    const r = await child('failed-open', junk);
    expect(r.err).toBe('');
    expect(r.code).toBe(3);
    expect(JSON.parse(r.out)).toEqual({ code: 'ERR_METADATA_NOT_A_DATABASE' });
  });
});
