/**
 * What only the PostgreSQL store has (issue #12): the schema created once by processes opening
 * an empty database at the same time (advisory lock), a newer schema refused, int8 values past
 * 2^53 a typed error, a foreign database left alone, a wrong connection string named.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { PostgresMetadataStore } from '../../src/metadata/index.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../support/pg.js';

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
});
async function fresh(): Promise<TestDatabase> {
  const db = await createTestDatabase('pgstore');
  databases.push(db);
  return db;
}
async function sql(url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

describe.skipIf(!pgAvailable)('PostgresMetadataStore', () => {
  it('six stores (each its own pool of connections) opening an empty database at once create the schema once; ids stay unique across them', async () => {
    const db = await fresh();
    const stores = await Promise.all(Array.from({ length: 6 }, () => PostgresMetadataStore.open({ connectionString: db.url })));
    try {
      const firsts = await Promise.all(stores.map((s) => s.prepareObjectIds(10)));
      expect(new Set(firsts.map((f) => Math.floor(f / 10))).size).toBe(6);
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('refuses a database whose schema is newer, and one that holds foreign tables of our names', async () => {
    const db = await fresh();
    await (await PostgresMetadataStore.open({ connectionString: db.url })).close();
    await sql(db.url, 'UPDATE s3sc_schema SET version = 99');
    const err = await PostgresMetadataStore.open({ connectionString: db.url }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect(err).toMatchObject({ code: 'ERR_METADATA_SCHEMA_TOO_NEW', message: expect.stringContaining('schema version 99') });
    const other = await fresh();
    await sql(other.url, 'CREATE TABLE objects (id int)');
    await expect(PostgresMetadataStore.open({ connectionString: other.url })).rejects.toMatchObject({ code: 'ERR_METADATA_NOT_A_DATABASE' });
  });

  it('an int8 past 2^53 in the database is ERR_METADATA_UNSAFE_INTEGER, never a rounded number', async () => {
    const db = await fresh();
    const store = await PostgresMetadataStore.open({ connectionString: db.url });
    try {
      await store.createStream({ streamId: 1, epoch: 0, startOffset: 0 });
      await sql(db.url, `UPDATE streams SET end_offset = 9007199254740993 WHERE stream_id = 1`);
      await expect(store.getStreams([1])).rejects.toMatchObject({ code: 'ERR_METADATA_UNSAFE_INTEGER', message: expect.stringContaining('9007199254740993') });
      // The store keeps working for the rows that are fine.
      await store.createStream({ streamId: 2, epoch: 0, startOffset: 0 });
      expect((await store.getStreams([2]))[0]!.endOffset).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('a wrong connection string is an OptionsError naming it; a read-only store refuses writes', async () => {
    await expect(PostgresMetadataStore.open({ connectionString: 'mysql://x' })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', message: expect.stringContaining('connectionString') });
    const db = await fresh();
    await (await PostgresMetadataStore.open({ connectionString: db.url })).close();
    const ro = await PostgresMetadataStore.open({ connectionString: db.url, readOnly: true });
    try {
      expect(await ro.listStreams()).toEqual([]);
      await expect(ro.createStream({ streamId: 1, epoch: 0, startOffset: 0 })).rejects.toMatchObject({ code: 'ERR_METADATA_READ_ONLY' });
    } finally {
      await ro.close();
    }
  });
});
