/**
 * The SQLite schema of `SqliteMetadataStore`.
 *
 * Identification: `PRAGMA application_id` (a 32-bit field in the database header, made for
 * exactly this) marks a file as ours, and `PRAGMA user_version` holds the schema version. Both
 * live in page 1 and are written in the same transaction as the tables, so a file is either
 * fully initialised or still empty. The `meta` table repeats both for humans poking at the file
 * with the sqlite3 shell; the pragmas are authoritative.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { MetadataError } from '../errors.js';
import { APPLICATION_ID, FORMAT_NAME, SCHEMA_VERSION } from './version.js';

export { APPLICATION_ID, FORMAT_NAME, SCHEMA_VERSION };

const DDL_V1 = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- The next object id prepareObjectIds hands out. Never decreases; also bumped past ids that a
-- host committed without preparing them, so they are never handed out again.
CREATE TABLE id_sequence (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  next_id   INTEGER NOT NULL CHECK (next_id >= 1)
);

CREATE TABLE streams (
  stream_id    INTEGER PRIMARY KEY CHECK (stream_id >= 0),
  epoch        INTEGER NOT NULL CHECK (epoch >= 0),
  start_offset INTEGER NOT NULL CHECK (start_offset >= 0),
  end_offset   INTEGER NOT NULL CHECK (end_offset >= start_offset),
  state        TEXT NOT NULL CHECK (state IN ('opened', 'closed', 'deleted'))
);

-- Stream set objects (kind 'sso': order_id set, stream columns NULL, ranges in sso_ranges) and
-- stream objects (kind 'so': one stream range in the row). 'deleting' objects were removed by a
-- commit (or a trim/delete of their stream) and wait for delete_due_ms before storage deletion.
CREATE TABLE objects (
  object_id     INTEGER PRIMARY KEY CHECK (object_id >= 0),
  kind          TEXT NOT NULL CHECK (kind IN ('sso', 'so')),
  node_id       INTEGER NOT NULL,
  order_id      INTEGER,
  data_time_ms  INTEGER NOT NULL,
  object_size   INTEGER NOT NULL CHECK (object_size >= 0),
  stream_id     INTEGER,
  start_offset  INTEGER,
  end_offset    INTEGER,
  state         TEXT NOT NULL CHECK (state IN ('live', 'deleting')),
  committed_ms  INTEGER NOT NULL,
  delete_due_ms INTEGER,
  CHECK (kind = 'so' OR (order_id IS NOT NULL AND stream_id IS NULL)),
  CHECK (kind = 'sso' OR (stream_id IS NOT NULL AND start_offset >= 0 AND end_offset > start_offset)),
  CHECK ((state = 'deleting') = (delete_due_ms IS NOT NULL))
);
CREATE INDEX objects_live_sso ON objects (node_id, order_id, object_id) WHERE kind = 'sso' AND state = 'live';
CREATE INDEX objects_live_so ON objects (stream_id, start_offset, object_id) WHERE kind = 'so' AND state = 'live';
CREATE INDEX objects_deleting ON objects (delete_due_ms, object_id) WHERE state = 'deleting';

CREATE TABLE sso_ranges (
  object_id    INTEGER NOT NULL REFERENCES objects (object_id) ON DELETE CASCADE,
  stream_id    INTEGER NOT NULL CHECK (stream_id >= 0),
  start_offset INTEGER NOT NULL CHECK (start_offset >= 0),
  end_offset   INTEGER NOT NULL,
  PRIMARY KEY (object_id, stream_id),
  CHECK (end_offset > start_offset)
) WITHOUT ROWID;

-- Ids handed out by prepareObjectIds and not yet committed: [first_id, end_id). Ranges never
-- overlap (they come from id_sequence). A commit removes the ids it uses (splitting a range).
-- Expired ranges are kept for a while so that a commit of an expired id can be refused.
CREATE TABLE prepared_ids (
  first_id   INTEGER PRIMARY KEY,
  end_id     INTEGER NOT NULL CHECK (end_id > first_id),
  expires_ms INTEGER NOT NULL
);
`;

/**
 * Version 2: objects that failed planning or copying (a damaged block, an index that does not
 * hold what metadata says, overlapping offsets) are kept out of compaction until an operator
 * releases them (not a foreign key: the entry blocks nothing); node leases.
 */
const DDL_V2 = `
CREATE TABLE quarantine (
  object_id INTEGER PRIMARY KEY CHECK (object_id >= 0),
  code      TEXT NOT NULL,
  reason    TEXT NOT NULL,
  at_ms     INTEGER NOT NULL
);

-- The compactor running a node's compaction now, until expires_ms (renewed while it runs), so
-- a second one fails fast instead of compacting everything to lose at commit.
CREATE TABLE node_leases (
  node_id    INTEGER PRIMARY KEY,
  holder     TEXT NOT NULL,
  since_ms   INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL
);
`;

/**
 * Version 3: the compactor epoch of each node (claimNode): every commit a compactor makes
 * carries its epoch, and one older than the node's last claim is fenced.
 */
const DDL_V3 = `
CREATE TABLE node_epochs (
  node_id    INTEGER PRIMARY KEY,
  epoch      INTEGER NOT NULL CHECK (epoch >= 1),
  holder     TEXT NOT NULL,
  claimed_ms INTEGER NOT NULL
);
`;

/** Migrations from version `from` to `from + 1`, run in the transaction that bumps user_version. */
const MIGRATIONS: Record<number, string> = { 1: DDL_V2, 2: DDL_V3 };

/**
 * Checks that `db` is ours (or empty, then creates the schema), at a version this code reads.
 * Must run before anything writes to the file: a foreign database is left untouched.
 */
export function ensureSchema(db: BetterSqlite3.Database, path: string, nowMs: number): void {
  // Reading the header is the first access to the file: a non-SQLite file fails here with
  // SQLITE_NOTADB, which the caller maps to ERR_METADATA_NOT_A_DATABASE.
  const check = (): 'ours' | 'empty' => {
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (appId === APPLICATION_ID) {
      if (version > SCHEMA_VERSION) {
        throw new MetadataError(
          'ERR_METADATA_SCHEMA_TOO_NEW',
          `metadata database ${path} has schema version ${version}, newer than version ${SCHEMA_VERSION} that this ` +
            `version of s3-stream-compactor reads; upgrade s3-stream-compactor (or point it at another file)`,
        );
      }
      if (version < 1) throw notOurs(path, `application_id is ours but user_version is ${version}`);
      return 'ours';
    }
    const tables = db
      .prepare(`SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 6`)
      .pluck()
      .all() as string[];
    if (appId === 0 && tables.length === 0) return 'empty';
    throw notOurs(
      path,
      appId !== 0
        ? `its application_id is 0x${(appId >>> 0).toString(16)}`
        : `it has tables (${tables.slice(0, 5).join(', ')}${tables.length > 5 ? ', …' : ''}) but no s3-stream-compactor schema marker`,
    );
  };

  if (check() === 'ours') {
    migrate(db);
    ensureIndexes(db);
    return;
  }
  // Empty: create the schema in one transaction, re-checking under the write lock in case another
  // process initialised the file at the same time.
  db.transaction(() => {
    if (check() === 'ours') return;
    db.exec(DDL_V1);
    db.exec(DDL_V2);
    db.exec(DDL_V3);
    db.prepare('INSERT INTO id_sequence (singleton, next_id) VALUES (1, 1)').run();
    const meta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    meta.run('format', FORMAT_NAME);
    meta.run('schema_version', String(SCHEMA_VERSION));
    meta.run('created_ms', String(nowMs));
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
  ensureIndexes(db);
}

/**
 * For a read-only open: the file must be ours at exactly this version (an older one needs the
 * migration that only a read-write open makes; nothing is ever written here).
 */
export function checkSchemaReadOnly(db: BetterSqlite3.Database, path: string): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId !== APPLICATION_ID || version < 1) {
    throw notOurs(path, appId !== APPLICATION_ID ? `its application_id is 0x${(appId >>> 0).toString(16)}` : `user_version is ${version}`);
  }
  if (version > SCHEMA_VERSION) {
    throw new MetadataError(
      'ERR_METADATA_SCHEMA_TOO_NEW',
      `metadata database ${path} has schema version ${version}, newer than version ${SCHEMA_VERSION} that this version of s3-stream-compactor reads; upgrade s3-stream-compactor`,
    );
  }
  if (version < SCHEMA_VERSION) {
    throw new MetadataError(
      'ERR_METADATA_SCHEMA_OLD',
      `metadata database ${path} has schema version ${version}; a read-only command cannot upgrade it to version ${SCHEMA_VERSION}: run a command that writes (compact) once with write access`,
    );
  }
}

/** Brings an older schema of ours up to SCHEMA_VERSION, one version a step, under the write lock. */
function migrate(db: BetterSqlite3.Database): void {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  if (version() >= SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let v = version(); v < SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION));
  }).immediate();
}

/**
 * Indexes added after version 1 shipped. They change no data and no query result, only speed,
 * so they are created on open without a schema version bump.
 */
function ensureIndexes(db: BetterSqlite3.Database): void {
  // readStream asks for the SSOs holding one stream: without this it scans every range.
  db.exec('CREATE INDEX IF NOT EXISTS sso_ranges_stream ON sso_ranges (stream_id, object_id)');
}

function notOurs(path: string, why: string): MetadataError {
  return new MetadataError(
    'ERR_METADATA_NOT_A_DATABASE',
    `${path} is not an s3-stream-compactor metadata database (${why}); ` +
      `point the store at a new or empty file, or at the metadata file this library created`,
  );
}
