/** Node leases and claims of `PostgresMetadataStore` (documented in MetadataStore). */
import { MetadataError } from '../errors.js';
import { int } from './common.js';
import { dbNow, NOW, type PgConnection } from './postgres-connection.js';
import { ADOPTER_PREFIX } from './types.js';

export async function listExpiredNodes(db: PgConnection, req: { excludeNodeId: number }): Promise<number[]> {
  const { rows } = await db.query<{ node_id: number }>(
    'listExpiredNodes',
    `SELECT DISTINCT o.node_id FROM objects o WHERE o.kind = 'sso' AND o.state = 'live' AND o.node_id <> $1
       AND NOT EXISTS (SELECT 1 FROM node_leases l WHERE l.node_id = o.node_id AND l.expires_ms > ${NOW}) ORDER BY o.node_id`,
    [int('excludeNodeId', req.excludeNodeId)],
  );
  return rows.map((r) => r.node_id);
}

export async function acquireNodeLease(db: PgConnection, req: { nodeId: number; holder: string; ttlMs: number; preemptAdopter?: boolean }): Promise<void> {
  const nodeId = int('nodeId', req.nodeId);
  const ttlMs = int('ttlMs', req.ttlMs, 1);
  const holder = String(req.holder);
  return db.tx('acquireNodeLease', async (c) => {
    const now = await dbNow(c);
    await c.query('INSERT INTO node_leases VALUES ($1, $2, $3, 0) ON CONFLICT (node_id) DO NOTHING', [nodeId, holder, now]);
    const row = (await c.query<{ holder: string; since_ms: number; expires_ms: number }>('SELECT * FROM node_leases WHERE node_id = $1 FOR UPDATE', [nodeId])).rows[0]!;
    const adopter = req.preemptAdopter === true && row.holder.startsWith(ADOPTER_PREFIX);
    if (row.holder !== holder && row.expires_ms > now && !adopter) {
      throw new MetadataError(
        'ERR_METADATA_NODE_BUSY',
        `another compactor holds node ${nodeId} (${row.holder}, running since ${new Date(row.since_ms).toISOString()}, ` +
          `lease until ${new Date(row.expires_ms).toISOString()}): wait for its run to end, or stop it`,
      );
    }
    const since = row.holder === holder && row.expires_ms > 0 ? row.since_ms : now;
    await c.query('UPDATE node_leases SET holder = $2, since_ms = $3, expires_ms = $4 WHERE node_id = $1', [nodeId, holder, since, now + ttlMs]);
  });
}

export async function releaseNodeLease(db: PgConnection, req: { nodeId: number; holder: string }): Promise<void> {
  await db.query('releaseNodeLease', 'DELETE FROM node_leases WHERE node_id = $1 AND holder = $2', [int('nodeId', req.nodeId), String(req.holder)]);
}

export async function claimNode(db: PgConnection, req: { nodeId: number; holder: string }): Promise<{ epoch: number }> {
  const nodeId = int('nodeId', req.nodeId);
  const { rows } = await db.query<{ epoch: number }>(
    'claimNode',
    `INSERT INTO node_epochs VALUES ($1, 1, $2, ${NOW}) ON CONFLICT (node_id)
       DO UPDATE SET epoch = node_epochs.epoch + 1, holder = EXCLUDED.holder, claimed_ms = EXCLUDED.claimed_ms RETURNING epoch`,
    [nodeId, String(req.holder)],
  );
  return { epoch: rows[0]!.epoch };
}
