/**
 * The PostgreSQL schema of `PostgresMetadataStore`: the same tables as the SQLite store (with
 * int8 columns), plus the node epochs that fence a stale compactor. Created and migrated in one
 * transaction under an advisory lock, so processes starting together never race; a version
 * table says which schema the database holds, and a newer one than this code reads is refused.
 */
import type pg from 'pg';
import { MetadataError } from '../errors.js';

export const PG_SCHEMA_VERSION = 1;
/** pg_advisory_xact_lock key: 's3sc' in ASCII. */
const LOCK_KEY = 0x73337363;

const DDL_V1 = `
CREATE TABLE s3sc_schema (
  singleton  INT PRIMARY KEY CHECK (singleton = 1),
  version    INT NOT NULL,
  format     TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE id_sequence (
  singleton INT PRIMARY KEY CHECK (singleton = 1),
  next_id   INT8 NOT NULL CHECK (next_id >= 1)
);
INSERT INTO id_sequence (singleton, next_id) VALUES (1, 1);
CREATE TABLE streams (
  stream_id    INT8 PRIMARY KEY CHECK (stream_id >= 0),
  epoch        INT8 NOT NULL CHECK (epoch >= 0),
  start_offset INT8 NOT NULL CHECK (start_offset >= 0),
  end_offset   INT8 NOT NULL CHECK (end_offset >= start_offset),
  state        TEXT NOT NULL CHECK (state IN ('opened', 'closed', 'deleted'))
);
CREATE TABLE objects (
  object_id     INT8 PRIMARY KEY CHECK (object_id >= 0),
  kind          TEXT NOT NULL CHECK (kind IN ('sso', 'so')),
  node_id       INT8 NOT NULL,
  order_id      INT8,
  data_time_ms  INT8 NOT NULL,
  object_size   INT8 NOT NULL CHECK (object_size >= 0),
  stream_id     INT8,
  start_offset  INT8,
  end_offset    INT8,
  state         TEXT NOT NULL CHECK (state IN ('live', 'deleting')),
  committed_ms  INT8 NOT NULL,
  delete_due_ms INT8,
  CHECK (kind = 'so' OR (order_id IS NOT NULL AND stream_id IS NULL)),
  CHECK (kind = 'sso' OR (stream_id IS NOT NULL AND start_offset >= 0 AND end_offset > start_offset)),
  CHECK ((state = 'deleting') = (delete_due_ms IS NOT NULL))
);
CREATE INDEX objects_live_sso ON objects (node_id, order_id, object_id) WHERE kind = 'sso' AND state = 'live';
CREATE INDEX objects_live_so ON objects (stream_id, start_offset, object_id) WHERE kind = 'so' AND state = 'live';
CREATE INDEX objects_deleting ON objects (delete_due_ms, object_id) WHERE state = 'deleting';
CREATE TABLE sso_ranges (
  object_id    INT8 NOT NULL REFERENCES objects (object_id) ON DELETE CASCADE,
  stream_id    INT8 NOT NULL CHECK (stream_id >= 0),
  start_offset INT8 NOT NULL CHECK (start_offset >= 0),
  end_offset   INT8 NOT NULL,
  PRIMARY KEY (object_id, stream_id),
  CHECK (end_offset > start_offset)
);
CREATE INDEX sso_ranges_stream ON sso_ranges (stream_id, object_id);
CREATE TABLE prepared_ids (
  first_id   INT8 PRIMARY KEY,
  end_id     INT8 NOT NULL CHECK (end_id > first_id),
  expires_ms INT8 NOT NULL
);
CREATE TABLE quarantine (
  object_id INT8 PRIMARY KEY CHECK (object_id >= 0),
  code      TEXT NOT NULL,
  reason    TEXT NOT NULL,
  at_ms     INT8 NOT NULL
);
CREATE TABLE node_leases (
  node_id    INT8 PRIMARY KEY,
  holder     TEXT NOT NULL,
  since_ms   INT8 NOT NULL,
  expires_ms INT8 NOT NULL
);
-- The compactor epoch of each node: a compactor claims the node (epoch + 1) and every commit it
-- makes carries its epoch, checked in the commit's transaction; a stale one is fenced.
CREATE TABLE node_epochs (
  node_id    INT8 PRIMARY KEY,
  epoch      INT8 NOT NULL CHECK (epoch >= 1),
  holder     TEXT NOT NULL,
  claimed_ms INT8 NOT NULL
);
`;

/** Migrations from version `from` to `from + 1`. */
const MIGRATIONS: Record<number, string> = {};

export async function ensurePgSchema(client: pg.PoolClient, where: string): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    const exists = await client.query(`SELECT to_regclass('s3sc_schema') IS NOT NULL AS ok`);
    if (!exists.rows[0].ok) {
      const tables = await client.query(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('objects', 'streams') LIMIT 2`,
      );
      if (tables.rows.length > 0) {
        throw new MetadataError(
          'ERR_METADATA_NOT_A_DATABASE',
          `${where} has tables named like ours (${tables.rows.map((r: { table_name: string }) => r.table_name).join(', ')}) but no s3sc_schema: it is not an s3-stream-compactor database; use another database or schema`,
        );
      }
      await client.query(DDL_V1);
      await client.query(`INSERT INTO s3sc_schema (singleton, version, format) VALUES (1, $1, 's3-stream-compactor metadata')`, [PG_SCHEMA_VERSION]);
    }
    const { rows } = await client.query('SELECT version FROM s3sc_schema WHERE singleton = 1');
    let version = Number(rows[0].version);
    if (version > PG_SCHEMA_VERSION) {
      throw new MetadataError(
        'ERR_METADATA_SCHEMA_TOO_NEW',
        `${where} has schema version ${version}, newer than version ${PG_SCHEMA_VERSION} that this version of s3-stream-compactor reads; upgrade s3-stream-compactor`,
      );
    }
    while (version < PG_SCHEMA_VERSION) {
      await client.query(MIGRATIONS[version]!);
      version++;
      await client.query('UPDATE s3sc_schema SET version = $1 WHERE singleton = 1', [version]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
