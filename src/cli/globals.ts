/** The global options of every command: commander's strings, checked and parsed. */
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../observability/logger.js';
import { UsageError } from './errors.js';
import { parseDuration, parseInteger } from './parse.js';

/** Commander's values of the global options (strings as typed). */
export interface RawGlobals {
  endpointUrl?: string;
  endpoint?: string;
  region?: string;
  profile?: string;
  bucket?: string;
  namespace: string;
  metadata: string;
  nodeId: string;
  createBucket?: boolean;
  pathStyle?: boolean;
  requestTimeout: string;
  maxAttempts: string;
  gracePeriod: string;
  logLevel: string;
  json?: boolean;
  metricsPort?: string;
  metricsHost: string;
}

export interface Globals {
  endpoint: string | undefined;
  /** Undefined: resolved by the SDK from the profile's config when storage is opened. */
  region: string | undefined;
  profile: string | undefined;
  bucket: string | undefined;
  namespace: string;
  metadataPath: string;
  nodeId: number;
  createBucket: boolean;
  forcePathStyle: boolean;
  requestTimeoutMs: number;
  maxAttempts: number;
  graceMs: number;
  logLevel: LogLevel;
  json: boolean;
  metricsPort: number | undefined;
  metricsHost: string;
}

export const DEFAULT_NODE_ID = 0;
export const DEFAULT_METADATA_PATH = './meta.db';
export const DEFAULT_LOG_LEVEL: LogLevel = 'error';

export function parseGlobals(raw: RawGlobals, env: NodeJS.ProcessEnv = process.env): Globals {
  // The AWS conventions: flags first, then the SDK's environment variables for S3.
  const [endpointFlag, rawEndpoint] =
    raw.endpointUrl?.trim() ? ['--endpoint-url', raw.endpointUrl]
    : raw.endpoint?.trim() ? ['--endpoint', raw.endpoint]
    : env.AWS_ENDPOINT_URL_S3?.trim() ? ['AWS_ENDPOINT_URL_S3', env.AWS_ENDPOINT_URL_S3]
    : env.AWS_ENDPOINT_URL?.trim() ? ['AWS_ENDPOINT_URL', env.AWS_ENDPOINT_URL]
    : ['--endpoint-url', undefined];
  let endpoint = rawEndpoint?.trim() || undefined;
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new UsageError(endpointFlag, `expected an http(s) URL such as http://127.0.0.1:9000, got ${JSON.stringify(rawEndpoint)}`);
    }
    endpoint = endpoint.replace(/\/+$/, '');
  }
  const namespace = raw.namespace.trim();
  if (namespace.length === 0 || namespace.includes('/')) {
    throw new UsageError('--namespace', `expected a non-empty name without "/", got ${JSON.stringify(raw.namespace)}`);
  }
  if (raw.bucket !== undefined && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(raw.bucket)) {
    throw new UsageError('--bucket', `${JSON.stringify(raw.bucket)} is not a valid S3 bucket name (3-63 lower-case letters, digits, "." and "-")`);
  }
  if (!isLogLevel(raw.logLevel)) {
    throw new UsageError('--log-level', `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw.logLevel)}`);
  }
  if (raw.metadata.trim().length === 0) throw new UsageError('--metadata', 'expected a file path');
  return {
    endpoint,
    region: raw.region?.trim() || env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || undefined,
    profile: raw.profile?.trim() || undefined,
    bucket: raw.bucket,
    namespace,
    metadataPath: raw.metadata,
    nodeId: parseInteger('--node-id', raw.nodeId, 0),
    createBucket: raw.createBucket === true,
    // S3-compatible servers (MinIO, moto, ...) behind a custom endpoint usually need path-style
    // URLs, whether the endpoint is an IP address or a host name.
    forcePathStyle: raw.pathStyle ?? endpoint !== undefined,
    requestTimeoutMs: positive('--request-timeout', parseDuration('--request-timeout', raw.requestTimeout)),
    maxAttempts: parseInteger('--max-attempts', raw.maxAttempts, 1, 20),
    graceMs: parseDuration('--grace-period', raw.gracePeriod),
    logLevel: raw.logLevel,
    json: raw.json === true,
    metricsPort: raw.metricsPort === undefined ? undefined : parseInteger('--metrics-port', raw.metricsPort, 0, 65535),
    metricsHost: raw.metricsHost,
  };
}

function positive(flag: string, v: number): number {
  if (v <= 0) throw new UsageError(flag, `must be greater than 0, got ${v}`);
  return v;
}
