import { DEFAULT_REGION, type ResolvedSettings, type S3Client, type S3StorageOptions } from './s3-client.js';
import type { S3StorageConfig } from './types.js';

/**
 * A storage's plain configuration, for worker threads to build their own (`S3Storage.fromConfig`):
 * from the options it was built with, or, when it was given a client, from that client's
 * resolved settings.
 */
export type WorkerConfigSource = { bucket: string; namespace: string; settings: ResolvedSettings } & ({ options: S3StorageOptions } | { client: S3Client });

export async function workerConfigOf(source: WorkerConfigSource): Promise<S3StorageConfig> {
  const base = {
    bucket: source.bucket,
    namespace: source.namespace,
    requestTimeoutMs: source.settings.requestTimeoutMs,
    maxAttempts: source.settings.maxAttempts,
    retryBaseDelayMs: source.settings.retryBaseDelayMs,
  };
  if ('options' in source) {
    const o = source.options;
    return {
      ...base,
      region: o.region ?? process.env.AWS_REGION ?? DEFAULT_REGION,
      ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
      ...(o.forcePathStyle !== undefined ? { forcePathStyle: o.forcePathStyle } : {}),
      ...(o.credentials !== undefined ? { credentials: { ...o.credentials } } : {}),
    };
  }
  const config = source.client.config;
  const region = await config.region();
  const ep = config.endpoint ? await config.endpoint() : undefined;
  const creds = await config.credentials();
  const out: S3StorageConfig = { ...base, region };
  if (ep) out.endpoint = endpointUrl(ep);
  if (config.forcePathStyle !== undefined) out.forcePathStyle = config.forcePathStyle;
  if (creds) {
    out.credentials = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey };
    if (creds.sessionToken !== undefined) out.credentials.sessionToken = creds.sessionToken;
  }
  return out;
}

function endpointUrl(ep: { protocol: string; hostname: string; port?: number; path: string }): string {
  const protocol = ep.protocol.endsWith(':') ? ep.protocol : `${ep.protocol}:`;
  const host = ep.hostname.includes(':') && !ep.hostname.startsWith('[') ? `[${ep.hostname}]` : ep.hostname;
  const port = ep.port !== undefined ? `:${ep.port}` : '';
  const path = ep.path && ep.path !== '/' ? ep.path : '';
  return `${protocol}//${host}${port}${path}`;
}
