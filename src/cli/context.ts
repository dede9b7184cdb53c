/**
 * What every command shares: the global options (parsed by globals.ts), the logger, the S3 storage
 * (checked reachable before use), the metadata store, and orderly cleanup.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import type { BucketLocationConstraint } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import type { MetadataStore } from '../metadata/index.js';
import { createLogger } from '../observability/logger.js';
import type { S3Storage } from '../storage/s3-storage.js';
import { CliError, UsageError, unreachableMessage } from './errors.js';
import type { Globals } from './globals.js';
import { useErrSink } from './output.js';
import { Terminal } from './progress.js';

/** What the commands use of a store: both stores have every optional method. */
export type CliMetadataStore = MetadataStore &
  Required<Pick<MetadataStore, 'listStreams' | 'listAllLiveObjects' | 'quarantineObject' | 'listQuarantined' | 'releaseQuarantined'>>;

/** `--metadata postgres://…` names a PostgreSQL database; anything else is a SQLite file. */
export function isPostgresUrl(v: string): boolean {
  return /^postgres(ql)?:\/\//i.test(v.trim());
}

/** Resources of one command, closed in reverse order by `close()`. */
export class CliContext {
  readonly logger: Logger;
  /** stderr: log lines and diagnostics, and the progress bar of a long command. */
  readonly terminal: Terminal;
  private readonly cleanups: ((failed: boolean) => Promise<void> | void)[] = [];
  private storageInstance: S3Storage | undefined;
  private metadataInstance: CliMetadataStore | undefined;

  constructor(readonly globals: Globals) {
    this.terminal = new Terminal(process.stderr, !globals.json);
    this.logger = createLogger({ level: globals.logLevel, destination: this.terminal });
    useErrSink(this.terminal);
    this.onClose(() => useErrSink(undefined));
  }

  onClose(fn: (failed: boolean) => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  /** The bucket's storage, checked reachable (and created with --create-bucket). */
  /** `minPartSize`: --min-part-size, for a store that accepts parts below S3's 5 MiB. */
  async storage(opts: { minPartSize?: number } = {}): Promise<S3Storage> {
    if (this.storageInstance) return this.storageInstance;
    const g = this.globals;
    if (!g.bucket) throw new UsageError('--bucket', 'is required for this command (or set S3SC_BUCKET)');
    const { S3Storage } = await import('../storage/s3-storage.js');
    // The CLI owns its process: --profile is the SDK's AWS_PROFILE, for credentials and region
    // alike (and for the worker threads, which inherit the environment).
    if (g.profile !== undefined) process.env.AWS_PROFILE = g.profile;
    // An empty variable means unset to a shell user; the SDK would take AWS_REGION='' for a
    // region and look no further (the profile's config included).
    for (const k of ['AWS_REGION', 'AWS_PROFILE']) if (process.env[k]?.trim() === '') delete process.env[k];
    const region = g.region ?? (await this.profileRegion());
    const storage = new S3Storage({
      bucket: g.bucket,
      namespace: g.namespace,
      region,
      ...(g.endpoint !== undefined ? { endpoint: g.endpoint } : {}),
      forcePathStyle: g.forcePathStyle,
      // Credentials: the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, ...).
      requestTimeoutMs: g.requestTimeoutMs,
      maxAttempts: g.maxAttempts,
      ...(opts.minPartSize !== undefined ? { minPartSize: opts.minPartSize } : {}),
    });
    this.onClose(() => storage.close());
    await this.checkBucket(storage, region);
    this.storageInstance = storage;
    return storage;
  }

  /**
   * The region of the profile (AWS_PROFILE or --profile) from the shared config files, resolved
   * by the SDK itself. Never a silent default: without one, the command stops and says where to
   * put it.
   */
  private async profileRegion(): Promise<string> {
    const { S3Client } = await import('@aws-sdk/client-s3');
    const client = new S3Client({});
    try {
      const region = await client.config.region();
      if (region) return region;
    } catch {
      // No region anywhere: said below.
    } finally {
      client.destroy();
    }
    throw new UsageError(
      '--region',
      `no region given: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or give the profile (${process.env.AWS_PROFILE ?? 'default'}) a region in ~/.aws/config`,
    );
  }

  private async checkBucket(storage: S3Storage, region: string): Promise<void> {
    const g = this.globals;
    const bucket = storage.bucket;
    const { CreateBucketCommand, HeadBucketCommand } = await import('@aws-sdk/client-s3');
    try {
      await storage.client.send(new HeadBucketCommand({ Bucket: bucket }));
      this.logger.debug({ bucket, endpoint: g.endpoint }, 'bucket reachable');
      return;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const name = (err as { name?: string }).name ?? '';
      if (status === 404 || name === 'NotFound' || name === 'NoSuchBucket') {
        if (!g.createBucket) throw new CliError(`bucket "${bucket}" does not exist at ${g.endpoint ?? 'AWS S3'} (create it, or pass --create-bucket)`);
      } else {
        throw this.explain(err);
      }
    }
    try {
      await storage.client.send(
        new CreateBucketCommand({
          Bucket: bucket,
          ...(region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } } : {}),
        }),
      );
      this.logger.info({ bucket }, 'bucket created');
    } catch (err) {
      const name = (err as { name?: string }).name ?? '';
      if (name === 'BucketAlreadyOwnedByYou') return;
      throw this.explain(err, 'create bucket');
    }
  }

  /** A one-line explanation of a failed preflight request. */
  explain(err: unknown, what = 'check bucket'): CliError {
    const g = this.globals;
    const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const code = networkCode(err);
    if (code) return new CliError(unreachableMessage(g.endpoint, code), 1, { cause: err });
    if (e.name === 'CredentialsProviderError' || /credential/i.test(e.message ?? '')) {
      return new CliError('no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or configure a profile)', 1, { cause: err });
    }
    const status = e.$metadata?.httpStatusCode;
    if (status === 403) return new CliError(`access to bucket "${g.bucket}" denied (HTTP 403): check the credentials and the bucket policy`, 1, { cause: err });
    if (e.name === 'TimeoutError' || e.code === 'ETIMEDOUT') {
      return new CliError(unreachableMessage(g.endpoint, 'ETIMEDOUT'), 1, { cause: err });
    }
    const detail = e.message && e.message !== 'UnknownError' ? e.message : e.name ?? String(err);
    return new CliError(`${what} "${g.bucket}" at ${g.endpoint ?? 'AWS S3'} failed${status ? ` (HTTP ${status})` : ''}: ${detail}`, 1, { cause: err });
  }

  /**
   * The metadata store. `mustExist`: the file must be there already (every command but
   * ingest-sample: an empty database would make gc treat every object as garbage).
   * `readOnly`: plan, verify, inspect and `quarantine list` only read, and work on a read-only
   * file or folder.
   */
  async metadata(opts: { mustExist: boolean; readOnly?: boolean }): Promise<CliMetadataStore> {
    if (this.metadataInstance) return this.metadataInstance;
    const path = this.globals.metadataPath;
    if (isPostgresUrl(path)) {
      const { PostgresMetadataStore } = await import('../metadata/index.js');
      const store = await PostgresMetadataStore.open({ connectionString: path, graceMs: this.globals.graceMs, readOnly: opts.readOnly === true });
      this.onClose(() => store.close());
      this.metadataInstance = store;
      return store;
    }
    if (opts.mustExist || opts.readOnly) {
      if (!existsSync(path)) {
        throw new UsageError('--metadata', `${path} does not exist (point --metadata at the store's SQLite file; ingest-sample creates one)`);
      }
      if (!statSync(path).isFile()) throw new UsageError('--metadata', `${path} is not a file`);
    }
    const { SqliteThreadStore } = await import('../metadata/index.js');
    // A command that fails must not leave a new, empty store behind: gc would later take an
    // empty file for "metadata knows nothing" (and refuses it; it once deleted live data).
    const created = !opts.readOnly && path !== ':memory:' && !existsSync(path);
    if (created) {
      this.onClose((failed) => {
        if (failed) for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true });
      });
    }
    // On a thread of its own: the commands that run for long (compact on an interval, with its
    // metrics endpoint and signal handling) keep their event loop while SQLite waits.
    const store = await SqliteThreadStore.open({ path, graceMs: this.globals.graceMs, readOnly: opts.readOnly === true });
    this.onClose(() => store.close());
    this.metadataInstance = store;
    return store;
  }

  /** Runs the cleanups, last registered first; `failed`: the command did not succeed. */
  async close(opts: { failed?: boolean } = {}): Promise<void> {
    while (this.cleanups.length > 0) {
      const fn = this.cleanups.pop()!;
      try {
        await fn(opts.failed === true);
      } catch (err) {
        this.logger.debug({ err }, 'cleanup failed');
      }
    }
  }
}

const NET = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET']);

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; e && i < 8; i++) {
    const o = e as { code?: unknown; cause?: unknown; errors?: unknown[] };
    if (typeof o.code === 'string' && NET.has(o.code)) return o.code;
    if (Array.isArray(o.errors)) for (const x of o.errors) {
      const c = networkCode(x);
      if (c) return c;
    }
    e = o.cause;
  }
  return undefined;
}
