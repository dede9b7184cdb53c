import pg from 'pg';
import { CompactorError, MetadataError } from '../errors.js';
import { optionalInt } from './common.js';
import type { PostgresMetadataStoreOptions } from './postgres-store.js';

/**
 * The PostgreSQL store's pool: one-statement queries, transactions whose broken COMMIT is told
 * apart (ERR_METADATA_OUTCOME_UNKNOWN), and every driver or server error mapped to a typed one
 * that names the database and the fix.
 */

/** The database's clock in ms, for SQL: due times never depend on a node's clock. */
export const NOW = `(extract(epoch from clock_timestamp()) * 1000)::int8`;
const INT8 = 20;

export type Tx = pg.PoolClient;

/** NOW, read in `c`'s transaction. */
export async function dbNow(c: Tx): Promise<number> {
  return (await c.query<{ now: number }>(`SELECT ${NOW} AS now`)).rows[0]!.now;
}

export class PgConnection {
  readonly #pool: pg.Pool;
  #closed = false;

  /** @param where names the database in messages (the connection string without its password) */
  constructor(
    opts: PostgresMetadataStoreOptions,
    readonly where: string,
  ) {
    this.#pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: optionalInt('poolSize', opts.poolSize, 4, 1),
      statement_timeout: optionalInt('statementTimeoutMs', opts.statementTimeoutMs, 30_000, 1),
      lock_timeout: optionalInt('lockTimeoutMs', opts.lockTimeoutMs, 10_000, 1),
      idle_in_transaction_session_timeout: optionalInt('idleInTransactionTimeoutMs', opts.idleInTransactionTimeoutMs, 30_000, 1),
      connectionTimeoutMillis: optionalInt('connectTimeoutMs', opts.connectTimeoutMs, 10_000, 1),
      application_name: 's3-stream-compactor',
      ...(opts.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
      // Per pool, never pg's global parsers: the host's own pg keeps its own.
      types: { getTypeParser: ((oid: number, format?: string) => (oid === INT8 ? parseInt8 : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser },
    });
    // An idle connection the server ended: the pool drops it; the next query opens another.
    this.#pool.on('error', () => {});
    // A checked-out one the server ends (idle_in_transaction_session_timeout, a restart) emits
    // 'error' too, which would end the host's process unheard; its query in flight rejects with
    // the cause, which is what the caller sees.
    this.#pool.on('connect', (client) => client.on('error', () => {}));
  }

  async connect(op: string): Promise<pg.PoolClient> {
    if (this.#closed) throw new MetadataError('ERR_METADATA_CLOSED', `cannot ${op}: the metadata store (${this.where}) is closed`);
    return this.#pool.connect();
  }

  async query<R extends pg.QueryResultRow>(op: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      const client = await this.connect(op);
      try {
        return await client.query<R>(sql, params);
      } finally {
        client.release();
      }
    } catch (err) {
      throw this.mapError(err, op);
    }
  }

  /** One transaction (read-only: a consistent snapshot of several reads). */
  async tx<T>(op: string, fn: (c: Tx) => Promise<T>, readOnly = false): Promise<T> {
    let client: pg.PoolClient | undefined;
    try {
      client = await this.connect(op);
      await client.query(readOnly ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN');
      const out = await fn(client);
      try {
        await client.query('COMMIT');
      } catch (err) {
        // The connection broke with the COMMIT in flight: the database may have committed.
        if (!readOnly && brokenConnection(err)) {
          throw new MetadataError(
            'ERR_METADATA_OUTCOME_UNKNOWN',
            `${op} on ${this.where}: the connection broke while the database committed, so the change may or may not be in; read it back before acting on it`,
            { cause: err, retryable: true },
          );
        }
        throw err;
      }
      return out;
    } catch (err) {
      // A broken connection cannot roll back: release it destroyed.
      const broken = await client?.query('ROLLBACK').then(() => false, () => true);
      client?.release(broken);
      client = undefined;
      throw this.mapError(err, op);
    } finally {
      client?.release();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  mapError(err: unknown, op: string): unknown {
    if (err instanceof CompactorError) return err;
    const e = err as { code?: string; message?: string };
    const code = e.code ?? '';
    const io = (text: string, retryable: boolean) =>
      new MetadataError('ERR_METADATA_IO', `${op} failed on ${this.where}: ${text} (${code || 'no code'}: ${e.message ?? String(err)})`, { cause: err, retryable });
    if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(code) || /timeout exceeded when trying to connect/i.test(e.message ?? '')) {
      return io('cannot reach the server; check it runs and the connection string', true);
    }
    if (code === '55P03' || code === '40P01' || code === '40001') return io('lock wait timed out or a conflicting transaction won; retry', true);
    if (code === '57014') return io('a statement ran past statement_timeout; retry, or raise statementTimeoutMs', true);
    if (code === '25P03') return io('the session sat idle inside a transaction past idle_in_transaction_session_timeout and the server ended it; retry', true);
    if (code === '28P01' || code === '28000') return io('authentication failed; check the user and password', false);
    if (code === '3D000') return io('the database does not exist; create it (CREATE DATABASE) or fix the connection string', false);
    if (code === '25006') return new MetadataError('ERR_METADATA_READ_ONLY', `${op} refused: ${this.where} was opened read-only`, { cause: err });
    if (code === '53100') return io('the server disk is full; free space, then retry', true);
    if (brokenConnection(err)) {
      return io('the connection to the server broke (or the server ended the session); retry', true);
    }
    return err;
  }
}

/** int8 as a JavaScript number, or a typed error past 2^53 (pg hands int8 out as a string). */
function parseInt8(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new MetadataError('ERR_METADATA_UNSAFE_INTEGER', `the database holds ${v}, beyond 2^53: this value cannot be read exactly`);
  return n;
}

/** A failure of the connection itself (not an answer of the server's about the statement). */
function brokenConnection(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED'].includes(code) || code.startsWith('08') || code.startsWith('57P')) return true;
  return /Connection terminated|not queryable|connection error|Client was closed/i.test(typeof e.message === 'string' ? e.message : '');
}
