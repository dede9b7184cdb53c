/** Opening the SQLite file of `SqliteMetadataStore`: writable (created, migrated) or read-only (in place, else from a snapshot copy). */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { MetadataError } from '../errors.js';
import { checkSchemaReadOnly, ensureSchema } from './schema.js';
import { mapError } from './sqlite-errors.js';
import { prepareStatements, type Statements } from './sqlite-statements.js';

export interface OpenedDatabase {
  db: BetterSqlite3.Database;
  st: Statements;
  /** The snapshot folder of a read-only open that could not read in place; removed at close. */
  snapshotDir?: string;
}

/** Opens (creating when missing) and migrates the database. Throws MetadataError (see the store's constructor). */
export function openWritable(path: string, busyTimeoutMs: number, nowMs: () => number): OpenedDatabase {
  let db: BetterSqlite3.Database;
  try {
    // better-sqlite3's `timeout` is SQLite's busy_timeout.
    db = new Database(path, { timeout: busyTimeoutMs });
  } catch (err) {
    throw mapError(err, path, 'open');
  }
  try {
    // Identify the file before writing anything to it (journal_mode=WAL rewrites the header).
    ensureSchema(db, path, nowMs());
    // WAL: readers never block the writer and a killed writer leaves the database intact.
    db.pragma('journal_mode = WAL');
    // synchronous=FULL: in WAL mode, NORMAL survives a process crash but may lose the last
    // commits on power loss or an OS crash. A caller acts on a commit as soon as it returns
    // (an ingest node trims its WAL after registering an SSO; a compactor lets the grace period
    // run for the objects it replaced), so a commit that returned must survive a power loss:
    // FULL fsyncs the WAL at every commit. Commits are few (one per upload or compaction run),
    // so the fsync costs nothing that matters.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    return { db, st: prepareStatements(db) };
  } catch (err) {
    try {
      db.close();
    } catch {
      // already failing; the original error is the useful one
    }
    throw mapError(err, path, 'open');
  }
}

/** Opens an existing database for reading only, never writing to it. */
export function openReadOnly(path: string, busyTimeoutMs: number): OpenedDatabase {
  const open = (file: string) => {
    let db: BetterSqlite3.Database | undefined;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true, timeout: busyTimeoutMs });
      checkSchemaReadOnly(db, path);
      return { db, st: prepareStatements(db) };
    } catch (err) {
      try {
        db?.close();
      } catch {
        // already failing
      }
      throw err;
    }
  };
  try {
    return open(path);
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? '');
    if (!code.startsWith('SQLITE_READONLY') && !code.startsWith('SQLITE_CANTOPEN')) throw mapError(err, path, 'open');
    if (!existsSync(path)) throw new MetadataError('ERR_METADATA_IO', `cannot open metadata database ${path}: the file does not exist`, { cause: err });
  }
  // SQLite needs to write a -shm file beside a WAL database even to read it: read a copy.
  let snapshotDir: string | undefined;
  try {
    snapshotDir = mkdtempSync(join(tmpdir(), 's3sc-meta-ro-'));
    const copy = join(snapshotDir, basename(path));
    copyFileSync(path, copy);
    if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
    return { ...open(copy), snapshotDir };
  } catch (err) {
    dropSnapshot(snapshotDir);
    throw mapError(err, path, 'open');
  }
}

export function dropSnapshot(dir: string | undefined): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}
