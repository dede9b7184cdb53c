import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { SCHEMA_VERSION, SqliteMetadataStore } from '../../src/metadata/index.js';
import { mapError } from '../../src/metadata/sqlite-errors.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

function openError(path: string): MetadataError {
  try {
    new SqliteMetadataStore({ path });
  } catch (err) {
    expect(err).toBeInstanceOf(MetadataError);
    return err as MetadataError;
  }
  throw new Error(`opening ${path} did not fail`);
}

describe('opening', () => {
  it('refuses a file that is not a SQLite database, naming the path and the fix', () => {
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'these are not the pages you are looking for\n'.repeat(200));
    const err = openError(path);
    expect(err.code).toBe('ERR_METADATA_NOT_A_DATABASE');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/new or empty file/);
  });

  it('refuses somebody else\'s SQLite database and leaves it untouched', () => {
    const path = join(dir, 'other.db');
    const other = new Database(path);
    other.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)');
    other.close();
    const err = openError(path);
    expect(err.code).toBe('ERR_METADATA_NOT_A_DATABASE');
    expect(err.message).toContain(path);
    expect(err.message).toContain('customers');
    const again = new Database(path);
    expect(again.pragma('journal_mode', { simple: true })).toBe('delete'); // not switched to WAL
    expect(again.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table'`).pluck().all()).toEqual(['customers']);
    again.close();
  });

  it('refuses a database written by a newer schema version', async () => {
    const path = join(dir, 'meta.db');
    await new SqliteMetadataStore({ path }).close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const err = openError(path);
    expect(err.code).toBe('ERR_METADATA_SCHEMA_TOO_NEW');
    expect(err.message).toContain(path);
    expect(err.message).toContain(`version ${SCHEMA_VERSION + 1}`);
  });

  it('migrates a version 1 database (no quarantine, no node leases, no node epochs) on open, keeping its data', async () => {
    const path = join(dir, 'v1.db');
    const old = new SqliteMetadataStore({ path });
    await old.createStream({ streamId: 7, epoch: 0, startOffset: 3 });
    await old.close();
    const raw = new Database(path);
    raw.exec('DROP TABLE quarantine; DROP TABLE node_leases; DROP TABLE node_epochs');
    raw.pragma('user_version = 1');
    raw.close();
    const store = new SqliteMetadataStore({ path });
    expect((await store.getStreams([7]))[0]).toMatchObject({ streamId: 7, startOffset: 3 });
    await store.quarantineObject({ objectId: 5, code: 'ERR_PLAN_OVERLAP', reason: 'overlaps object 4' });
    await store.quarantineObject({ objectId: 5, code: 'ERR_FORMAT_BLOCK_MAGIC', reason: 'a later cause' });
    expect(await store.listQuarantined()).toEqual([{ objectId: 5, code: 'ERR_PLAN_OVERLAP', reason: 'overlaps object 4', atMs: expect.any(Number) }]);
    expect(await store.releaseQuarantined(5)).toBe(true);
    expect(await store.releaseQuarantined(5)).toBe(false);
    expect(await store.claimNode({ nodeId: 1, holder: 'h' })).toEqual({ epoch: 1 });
    await store.close();
    const check = new Database(path, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    check.close();
  });

  it('opens an empty file as a new database, in WAL mode with our marker', async () => {
    const path = join(dir, 'empty.db');
    writeFileSync(path, '');
    const store = new SqliteMetadataStore({ path });
    await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    await store.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(raw.prepare(`SELECT value FROM meta WHERE key = 'format'`).pluck().get()).toBe('s3-stream-compactor-metadata');
    raw.close();
  });

  it('maps I/O failures to ERR_METADATA_IO naming the path and the fix', async () => {
    const missingDir = join(dir, 'no', 'such', 'dir', 'meta.db');
    const err = openError(missingDir);
    expect(err.code).toBe('ERR_METADATA_IO');
    expect(err.message).toContain(missingDir);
    expect(err.message).toMatch(/directory does not exist/);

    const cantOpen = openError(dir); // a directory, not a file
    expect(cantOpen.code).toBe('ERR_METADATA_IO');
    expect(cantOpen.message).toContain(dir);

    // Permission bits do not stop root; only check read-only files as an ordinary user.
    if (process.getuid?.() !== 0) {
      const path = join(dir, 'ro.db');
      await new SqliteMetadataStore({ path }).close();
      chmodSync(path, 0o444);
      chmodSync(dir, 0o555);
      try {
        let store: SqliteMetadataStore | undefined;
        try {
          store = new SqliteMetadataStore({ path });
          await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
          expect.unreachable('write to a read-only database succeeded');
        } catch (e) {
          expect(e).toMatchObject({ code: 'ERR_METADATA_IO', message: expect.stringContaining(path) });
        } finally {
          await store?.close();
        }
      } finally {
        chmodSync(dir, 0o755);
      }
    }
  });

  it('a full disk is ERR_METADATA_IO, the failed commit changes nothing, and the store keeps working', async () => {
    const path = join(dir, 'full.db');
    const store = new SqliteMetadataStore({ path });
    await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    // A real SQLITE_FULL: cap the file at its current size on the store's own connection.
    const db = (store as unknown as { db: Database.Database }).db;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const id = await store.prepareObjectIds(1);
    const before = await store.listAllLiveObjects();
    const err = await store
      .commitStreamSetObject({
        nodeId: 1,
        objectId: id,
        objectSize: 1,
        streamRanges: Array.from({ length: 2000 }, (_, i) => ({ streamId: i, startOffset: 0, endOffset: 1 })),
        streamObjects: [],
        compactedObjectIds: [],
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_METADATA_IO', retryable: true });
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toMatch(/disk is full; free space/);
    expect(await store.listAllLiveObjects()).toEqual(before);
    db.pragma('max_page_count = 1073741823');
    await store.commitStreamSetObject({ nodeId: 1, objectId: id, objectSize: 1, streamRanges: [{ streamId: 1, startOffset: 0, endOffset: 1 }], streamObjects: [], compactedObjectIds: [] });
    await store.close();
  });

  it('maps each SQLite I/O error code to a message with the fix', () => {
    const cases: [string, RegExp][] = [
      ['SQLITE_IOERR_WRITE', /I\/O error; check the disk/],
      ['SQLITE_READONLY', /read-only; make the file/],
      ['SQLITE_CANTOPEN', /cannot open the file/],
      ['SQLITE_BUSY', /another connection holds the database lock/],
    ];
    for (const [code, text] of cases) {
      const mapped = mapError(new Database.SqliteError('boom', code), '/data/meta.db', 'commitStreamSetObject');
      expect(mapped).toMatchObject({ code: 'ERR_METADATA_IO', message: expect.stringMatching(text) });
      expect((mapped as Error).message).toContain('/data/meta.db');
      expect((mapped as MetadataError).cause).toBeInstanceOf(Database.SqliteError);
    }
  });

  it('rejects every call after close with ERR_METADATA_CLOSED; close is idempotent', async () => {
    const store = new SqliteMetadataStore({ path: ':memory:' });
    await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    await store.close();
    await store.close();
    const calls: (() => Promise<unknown>)[] = [
      () => store.createStream({ streamId: 2, epoch: 0, startOffset: 0 }),
      () => store.trimStream(1, 1),
      () => store.deleteStream(1),
      () => store.closeStream(1),
      () => store.getStreams([1]),
      () => store.listStreams(),
      () => store.prepareObjectIds(1),
      () => store.commitStreamSetObject({ nodeId: 1, objectId: -1, objectSize: 0, streamRanges: [], streamObjects: [], compactedObjectIds: [] }),
      () => store.listStreamSetObjects({ nodeId: 1 }),
      () => store.listStreamObjects({ streamId: 1 }),
      () => store.listAllLiveObjects(),
      () => store.listPendingDeletions({ nowMs: 0 }),
      () => store.completeDeletions([1]),
      () => store.isObjectKnown(1),
    ];
    for (const call of calls) {
      const p = call(); // a rejected promise, never a synchronous throw
      expect(p).toBeInstanceOf(Promise);
      await expect(p).rejects.toMatchObject({ code: 'ERR_METADATA_CLOSED', message: expect.stringContaining(':memory:') });
    }
  });

  it('two stores on one file see each other\'s commits', async () => {
    const path = join(dir, 'shared.db');
    const a = new SqliteMetadataStore({ path });
    const b = new SqliteMetadataStore({ path });
    await a.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
    expect(await b.getStreams([1])).toHaveLength(1);
    const [x, y] = [await a.prepareObjectIds(2), await b.prepareObjectIds(2)];
    expect(y).toBe(x + 2);
    await a.close();
    await b.close();
  });
});
