/** Node claims, leases and the quarantine of `SqliteMetadataStore` (documented on its methods and in MetadataStore). */
import { MetadataError } from '../errors.js';
import { int } from './common.js';
import type { SqliteInternals } from './sqlite-statements.js';
import { ADOPTER_PREFIX, type QuarantinedObject } from './types.js';

export function claimNode(store: SqliteInternals, req: { nodeId: number; holder: string }): Promise<{ epoch: number }> {
  const nodeId = int('nodeId', req.nodeId);
  return store.write('claimNode', () => {
    const epoch = store.db('claimNode')
      .prepare<[number, string, number], { epoch: number }>(
        `INSERT INTO node_epochs (node_id, epoch, holder, claimed_ms) VALUES (?, 1, ?, ?)
         ON CONFLICT (node_id) DO UPDATE SET epoch = epoch + 1, holder = excluded.holder, claimed_ms = excluded.claimed_ms RETURNING epoch`,
      )
      .get(nodeId, String(req.holder), store.now())!.epoch;
    return { epoch };
  });
}

export function quarantineObject(store: SqliteInternals, req: { objectId: number; code: string; reason: string }): Promise<void> {
  const objectId = int('objectId', req.objectId);
  return store.write('quarantineObject', () => {
    const db = store.db('quarantineObject');
    // The first cause is kept: it is the one an operator needs to repair.
    db.prepare('INSERT INTO quarantine (object_id, code, reason, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (object_id) DO NOTHING').run(
      objectId,
      String(req.code),
      String(req.reason),
      store.now(),
    );
  });
}

export function listQuarantined(store: SqliteInternals): Promise<QuarantinedObject[]> {
  return store.read('listQuarantined', () =>
    (store.db('listQuarantined').prepare('SELECT object_id, code, reason, at_ms FROM quarantine ORDER BY object_id').all() as {
      object_id: number;
      code: string;
      reason: string;
      at_ms: number;
    }[]).map((r) => ({ objectId: r.object_id, code: r.code, reason: r.reason, atMs: r.at_ms })),
  );
}

export function releaseQuarantined(store: SqliteInternals, objectId: number): Promise<boolean> {
  const id = int('objectId', objectId);
  return store.write('releaseQuarantined', () => store.db('releaseQuarantined').prepare('DELETE FROM quarantine WHERE object_id = ?').run(id).changes > 0);
}

export function listExpiredNodes(store: SqliteInternals, req: { excludeNodeId: number }): Promise<number[]> {
  const exclude = int('excludeNodeId', req.excludeNodeId);
  return store.read('listExpiredNodes', () =>
    store.db('listExpiredNodes')
      .prepare<[number, number], number>(
        `SELECT DISTINCT o.node_id FROM objects o WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id <> ?
           AND NOT EXISTS (SELECT 1 FROM node_leases l WHERE l.node_id = o.node_id AND l.expires_ms > ?) ORDER BY o.node_id`,
      )
      .pluck()
      .all(exclude, store.now()),
  );
}

export function acquireNodeLease(store: SqliteInternals, req: { nodeId: number; holder: string; ttlMs: number; preemptAdopter?: boolean }): Promise<void> {
  const nodeId = int('nodeId', req.nodeId);
  const ttlMs = int('ttlMs', req.ttlMs, 1);
  return store.write('acquireNodeLease', () => {
    const db = store.db('acquireNodeLease');
    const now = store.now();
    const row = db.prepare('SELECT holder, since_ms, expires_ms FROM node_leases WHERE node_id = ?').get(nodeId) as
      | { holder: string; since_ms: number; expires_ms: number }
      | undefined;
    const adopter = row !== undefined && req.preemptAdopter === true && row.holder.startsWith(ADOPTER_PREFIX);
    if (row && row.holder !== req.holder && row.expires_ms > now && !adopter) {
      throw new MetadataError(
        'ERR_METADATA_NODE_BUSY',
        `another compactor holds node ${nodeId} (${row.holder}, running since ${new Date(row.since_ms).toISOString()}, ` +
          `lease until ${new Date(row.expires_ms).toISOString()}): wait for its run to end, or stop it`,
      );
    }
    const since = row && row.holder === req.holder ? row.since_ms : now;
    db.prepare(
      'INSERT INTO node_leases (node_id, holder, since_ms, expires_ms) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (node_id) DO UPDATE SET holder = excluded.holder, since_ms = excluded.since_ms, expires_ms = excluded.expires_ms',
    ).run(nodeId, String(req.holder), since, now + ttlMs);
  });
}

export function releaseNodeLease(store: SqliteInternals, req: { nodeId: number; holder: string }): Promise<void> {
  const nodeId = int('nodeId', req.nodeId);
  return store.write('releaseNodeLease', () => {
    store.db('releaseNodeLease').prepare('DELETE FROM node_leases WHERE node_id = ? AND holder = ?').run(nodeId, String(req.holder));
  });
}
