/**
 * A commit whose outcome is unknown (issue #12): the connection to PostgreSQL breaks after the
 * COMMIT reached the server, so the client sees an error although the change is in. Deleting the
 * outputs then would lose data (the compacted sources go after their grace period). A TCP proxy
 * in front of the real server forwards the COMMIT of a stream-set-object commit and cuts the
 * connection before the answer: the compactor and the ingest path read metadata back, find
 * their commit, and keep (and report) it.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/compactor/gc.js';
import { Compactor } from '../../src/compactor/compactor.js';
import { parseObjectKey } from '../../src/format/index.js';
import type { StreamRecord } from '../../src/format/types.js';
import { readStream } from '../../src/ingest/read-stream.js';
import { uploadStreamSetObject } from '../../src/ingest/upload-sso.js';
import { PostgresMetadataStore } from '../../src/metadata/index.js';
import type { S3Storage } from '../../src/storage/s3-storage.js';
import { makeBucket } from '../support/env.js';
import { createTestDatabase, pgAvailable, type TestDatabase } from '../support/pg.js';
import { collect, makeRecords, plain } from '../support/records.js';

/** Forwards to PostgreSQL; when armed, cuts the next connection that sends a commit's CAS, right after its COMMIT. */
async function startCutProxy(target: URL): Promise<{ url: string; arm(): void; cuts: number; close(): Promise<void> }> {
  let armed = false;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let inCommitTx = false;
    let cut = false;
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (armed && text.includes("UPDATE objects SET state = 'deleting'")) inCommitTx = true;
      upstream.write(chunk);
      if (armed && inCommitTx && /Q\0\0\0\x0bCOMMIT\0/.test(text)) {
        armed = false;
        cut = true;
        cuts++;
        // The server has the COMMIT; the client never hears back.
        upstream.end();
        client.destroy();
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!cut) client.write(chunk);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', () => sockets.delete(client));
    upstream.on('error', close).on('close', () => sockets.delete(upstream));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = new URL(target.toString());
  url.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url: url.toString(),
    arm: () => (armed = true),
    get cuts() {
      return cuts;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe.skipIf(!pgAvailable)('a commit whose answer is lost', () => {
  let db: TestDatabase;
  let direct: PostgresMetadataStore;
  let storage: S3Storage;
  const written = new Map<number, StreamRecord[]>([
    [1, []],
    [2, []],
  ]);
  const next = new Map<number, number>([
    [1, 0],
    [2, 0],
  ]);

  beforeAll(async () => {
    db = await createTestDatabase('unknown');
    direct = await PostgresMetadataStore.open({ connectionString: db.url, graceMs: 0 });
    storage = await makeBucket('unknown');
    for (const s of [1, 2]) await direct.createStream({ streamId: s, epoch: 0, startOffset: 0 });
  }, 60_000);

  afterAll(async () => {
    await direct?.close();
    storage?.close();
    await db?.drop();
  });

  async function ingest(metadata: PostgresMetadataStore) {
    const records = [1, 2].flatMap((s) => {
      const recs = makeRecords(s, next.get(s)!, 2, 3, 1500);
      next.set(s, next.get(s)! + 6);
      return recs;
    });
    const sso = await uploadStreamSetObject({ storage, metadata, nodeId: 1, records, blockSize: 4096 });
    for (const r of records) written.get(r.streamId)!.push(r);
    return sso;
  }

  it('the ingest path and the compactor find their commit, keep their objects, and nothing is lost', async () => {
    const proxy = await startCutProxy(new URL(db.url));
    const viaProxy = await PostgresMetadataStore.open({ connectionString: proxy.url, graceMs: 0 });
    try {
      for (let i = 0; i < 3; i++) await ingest(direct);
      // The ingest's own commit: answered by a broken connection, read back, reported as done.
      proxy.arm();
      const sso = await ingest(viaProxy);
      expect(proxy.cuts).toBe(1);
      expect(await storage.headObject(sso.key)).toBeDefined();
      expect((await direct.listStreamSetObjects({ nodeId: 1 })).map((o) => o.objectId)).toContain(sso.objectId);

      // The compaction's commit: the same, and the run reports its commit.
      const compactor = new Compactor({ storage, metadata: viaProxy, nodeId: 1, retryBaseDelayMs: 5 });
      try {
        proxy.arm();
        const report = await compactor.compactOnce();
        expect(proxy.cuts).toBe(2);
        expect(report.committed).toBe(true);
        expect(await storage.headObject(storage.keyOf(report.newObjectId))).toBeDefined();
      } finally {
        await compactor.close();
      }
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
    // A later run deletes the compacted sources (grace 0): every record still reads back.
    const after = new Compactor({ storage, metadata: direct, nodeId: 1, retryBaseDelayMs: 5 });
    await after.compactOnce();
    await after.close();
    await collectGarbage(storage, direct, { safetyAgeMs: 0, force: true });
    for (const o of await storage.listObjects()) expect(await direct.isObjectKnown(parseObjectKey(o.key)!.objectId), o.key).toBe(true);
    for (const s of [1, 2]) expect((await collect(readStream({ storage, metadata: direct, streamId: s }))).map(plain)).toEqual(written.get(s)!.map(plain));
  }, 60_000);
});
