/**
 * A fault-injecting HTTP proxy in front of the test S3 server (path-style requests).
 *
 *   const proxy = await startFaultProxy(s3Endpoint());
 *   const rule = proxy.addRule({ op: 'GetObject', key: 'obj-1', times: 2, action: fault.status(500) });
 *   ... point an S3Storage at proxy.url ...
 *   expect(rule.hits).toBe(2);
 *   await proxy.waitFor('UploadPart', 3);      // resolves once 3 UploadPart requests arrived
 *   proxy.requests                              // [{ op, method, key, range, status, fault }]
 *   await proxy.close();
 *
 * Rules are tried in the order they were added; the first active rule matching a request
 * applies (after letting its first `skip` matches through), `times` times (default 1; Infinity
 * for a persistent fault). Requests that no rule takes are forwarded untouched, streaming.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import type { S3Storage } from '../../src/storage/index.js';
import { createTestBucket, makeStorage, s3Endpoint, type TestStorageOptions } from './env.js';

export type S3Operation =
  | 'GetObject'
  | 'HeadObject'
  | 'PutObject'
  | 'DeleteObject'
  | 'UploadPart'
  | 'CreateMultipartUpload'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'DeleteObjects'
  | 'ListObjectsV2'
  | 'ListObjects'
  | 'ListMultipartUploads'
  | 'ListParts'
  | 'CreateBucket'
  | 'DeleteBucket'
  | 'HeadBucket'
  | 'ListBuckets'
  | 'Other';

export type FaultAction =
  /** Answer with this status and an S3 XML error (code defaults by status). */
  | { type: 'status'; status: number; code?: string; message?: string }
  /** 503 SlowDown. */
  | { type: 'slowDown' }
  /** Destroy the connection before any response byte. */
  | { type: 'resetBeforeHeaders' }
  /** Forward, send the headers and `afterBytes` body bytes (default: half of Content-Length), then destroy. */
  | { type: 'resetAfterHeaders'; afterBytes?: number }
  /** Never answer (the request body is consumed); the client must give up. */
  | { type: 'stall' }
  /** Forward, send the headers and `afterBytes` body bytes (default 0), then send nothing more. */
  | { type: 'stallBody'; afterBytes?: number }
  /** Forward, send the headers and exactly `afterBytes` body bytes, then destroy. */
  | { type: 'cutBody'; afterBytes: number }
  /** Forward, holding the response back `ms` before its first byte. */
  | { type: 'delay'; ms: number }
  /** Answer with this status and body without forwarding (e.g. a 200 DeleteResult with per-key errors). */
  | { type: 'respond'; status: number; body: string; contentType?: string }
  /** Forward untouched (counts hits, e.g. to observe requests). */
  | { type: 'pass' };

/** Action constructors: `fault.status(500)`, `fault.cutBody(1024)`, … */
export const fault = {
  status: (status: number, code?: string, message?: string): FaultAction => ({
    type: 'status',
    status,
    ...(code !== undefined ? { code } : {}),
    ...(message !== undefined ? { message } : {}),
  }),
  slowDown: (): FaultAction => ({ type: 'slowDown' }),
  resetBeforeHeaders: (): FaultAction => ({ type: 'resetBeforeHeaders' }),
  resetAfterHeaders: (afterBytes?: number): FaultAction => ({ type: 'resetAfterHeaders', ...(afterBytes !== undefined ? { afterBytes } : {}) }),
  stall: (): FaultAction => ({ type: 'stall' }),
  stallBody: (afterBytes = 0): FaultAction => ({ type: 'stallBody', afterBytes }),
  cutBody: (afterBytes: number): FaultAction => ({ type: 'cutBody', afterBytes }),
  delay: (ms: number): FaultAction => ({ type: 'delay', ms }),
  respond: (status: number, body: string, contentType = 'application/xml'): FaultAction => ({ type: 'respond', status, body, contentType }),
  pass: (): FaultAction => ({ type: 'pass' }),
};

export interface RuleSpec {
  /** Operation(s) to match; omitted = any. */
  op?: S3Operation | S3Operation[];
  /** Substring of the object key; omitted = any. */
  key?: string;
  /** Requests this rule applies to (after `skip`). Default 1; Infinity = until removed. */
  times?: number;
  /** Matching requests to let through untouched first. Default 0. */
  skip?: number;
  action: FaultAction;
}

export interface RuleHandle {
  /** Requests this rule applied its action to. */
  readonly hits: number;
  /** Requests that matched (skipped ones included). */
  readonly matched: number;
  /** True once `times` is used up. */
  readonly done: boolean;
  remove(): void;
  /** Resolves when `hits` reaches `count`. */
  waitForHits(count: number): Promise<void>;
}

export interface ProxiedRequest {
  seq: number;
  op: S3Operation;
  method: string;
  path: string;
  bucket: string | undefined;
  key: string | undefined;
  /** The Range header, e.g. 'bytes=100-199'. */
  range: string | undefined;
  /** Status sent to the client (undefined: connection destroyed before headers / still open). */
  status: number | undefined;
  /** The fault applied, if any. */
  fault: FaultAction['type'] | undefined;
  /** The request's headers as the client sent them. */
  headers: Record<string, string | string[] | undefined>;
}

export interface FaultProxy {
  /** Base URL of the proxy, e.g. http://127.0.0.1:40001 */
  readonly url: string;
  readonly target: string;
  /** Every request seen, in arrival order. */
  readonly requests: ProxiedRequest[];
  /** TCP connections clients opened to the proxy so far. */
  readonly connections: number;
  addRule(spec: RuleSpec): RuleHandle;
  /** Removes all rules (the request log is kept; `requests.length = 0` clears it). */
  clear(): void;
  /** Resolves when at least `count` requests of `op` (any op when undefined) have arrived. */
  waitFor(op: S3Operation | undefined, count: number): Promise<void>;
  /** Resolves when at least `count` responses of `op` have had their headers written. */
  waitForResponses(op: S3Operation | undefined, count: number): Promise<void>;
  /** Requests of `op` seen so far. */
  count(op?: S3Operation): number;
  /** Stops the proxy and destroys every open socket (stalled ones included). */
  close(): Promise<void>;
}

/** Raw header pairs without Connection and Keep-Alive: the proxy's own server decides those. */
function withoutConnectionHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!/^(connection|keep-alive)$/i.test(raw[i]!)) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** The S3 operation of a path-style request, from its method and query. */
export function classify(method: string, pathname: string, query: URLSearchParams): { op: S3Operation; bucket?: string; key?: string } {
  const parts = pathname.replace(/^\/+/, '').split('/');
  const bucket = parts[0] ? decodeURIComponent(parts[0]) : undefined;
  const rawKey = parts.slice(1).join('/');
  const key = rawKey ? decodeURIComponent(rawKey) : undefined;
  const m = method.toUpperCase();
  const b = (op: S3Operation) => ({ op, ...(bucket !== undefined ? { bucket } : {}), ...(key !== undefined ? { key } : {}) });
  if (!bucket) return b(m === 'GET' ? 'ListBuckets' : 'Other');
  if (key === undefined) {
    if (m === 'GET' && query.has('uploads')) return b('ListMultipartUploads');
    if (m === 'GET' && query.get('list-type') === '2') return b('ListObjectsV2');
    if (m === 'GET') return b(query.size === 0 || query.has('prefix') || query.has('marker') ? 'ListObjects' : 'Other');
    if (m === 'POST' && query.has('delete')) return b('DeleteObjects');
    if (m === 'PUT') return b(query.size === 0 ? 'CreateBucket' : 'Other');
    if (m === 'DELETE') return b(query.size === 0 ? 'DeleteBucket' : 'Other');
    if (m === 'HEAD') return b('HeadBucket');
    return b('Other');
  }
  switch (m) {
    case 'GET':
      return b(query.has('uploadId') ? 'ListParts' : 'GetObject');
    case 'HEAD':
      return b('HeadObject');
    case 'PUT':
      return b(query.has('partNumber') && query.has('uploadId') ? 'UploadPart' : 'PutObject');
    case 'POST':
      if (query.has('uploads')) return b('CreateMultipartUpload');
      if (query.has('uploadId')) return b('CompleteMultipartUpload');
      return b('Other');
    case 'DELETE':
      return b(query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject');
    default:
      return b('Other');
  }
}

const DEFAULT_CODES: Record<number, string> = {
  400: 'InvalidRequest',
  403: 'AccessDenied',
  404: 'NoSuchKey',
  409: 'Conflict',
  412: 'PreconditionFailed',
  500: 'InternalError',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
  504: 'GatewayTimeout',
};

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

interface Rule {
  spec: RuleSpec;
  ops: Set<S3Operation> | undefined;
  times: number;
  skip: number;
  matched: number;
  hits: number;
  removed: boolean;
  emitter: EventEmitter;
}

/**
 * `keepAlive`: keep the clients' connections open whatever the server says. moto closes every
 * connection after its response (real S3 does not): a test of connection reuse needs this.
 */
export async function startFaultProxy(targetUrl: string, opts: { keepAlive?: boolean } = {}): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  if (target.protocol !== 'http:') throw new Error(`fault proxy: only http targets are supported, got ${targetUrl}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const rules: Rule[] = [];
  const requests: ProxiedRequest[] = [];
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let seq = 0;

  const pick = (op: S3Operation, key: string | undefined): Rule | undefined => {
    for (const r of rules) {
      if (r.removed || r.hits >= r.times) continue;
      if (r.ops && !r.ops.has(op)) continue;
      if (r.spec.key !== undefined && !(key ?? '').includes(r.spec.key)) continue;
      r.matched++;
      if (r.matched <= r.skip) return undefined; // let this one through (and no later rule)
      r.hits++;
      r.emitter.emit('hit', r.hits);
      return r;
    }
    return undefined;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const { op, bucket, key } = classify(req.method ?? 'GET', url.pathname, url.searchParams);
    const rule = pick(op, key);
    const action: FaultAction = rule?.spec.action ?? { type: 'pass' };
    const entry: ProxiedRequest = {
      seq: seq++,
      op,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      bucket,
      key,
      range: typeof req.headers.range === 'string' ? req.headers.range : undefined,
      status: undefined,
      fault: rule ? action.type : undefined,
      headers: { ...req.headers },
    };
    requests.push(entry);
    events.emit('request', entry);
    req.on('error', () => {});
    res.on('error', () => {});

    const destroy = () => {
      req.socket.destroy();
    };
    const answer = (status: number, code: string, message: string, raw?: { body: string; contentType: string }) => {
      // Consume the request body first, so the client sees the status rather than EPIPE.
      const send = () => {
        if (res.destroyed) return;
        const body = raw ? raw.body : errorXml(code, message);
        entry.status = status;
        events.emit('response', entry);
        res.writeHead(status, { 'content-type': raw?.contentType ?? 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.complete) send();
      else {
        req.on('end', send);
        req.resume();
      }
    };

    switch (action.type) {
      case 'status':
        answer(action.status, action.code ?? DEFAULT_CODES[action.status] ?? 'Error', action.message ?? `injected ${action.status}`);
        return;
      case 'slowDown':
        answer(503, 'SlowDown', 'Please reduce your request rate.');
        return;
      case 'respond':
        answer(action.status, '', '', { body: action.body, contentType: action.contentType ?? 'application/xml' });
        return;
      case 'resetBeforeHeaders':
        if (req.complete) destroy();
        else {
          req.on('end', destroy);
          req.resume();
        }
        return;
      case 'stall':
        req.resume();
        return; // the socket stays open until the client or close() destroys it
      default:
        forward(action);
    }

    function forward(a: FaultAction): void {
      const headers = { ...req.headers };
      const up = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers,
          agent,
        },
        (upRes) => {
          upRes.on('error', () => {});
          const start = () => {
            if (res.destroyed) {
              upRes.destroy();
              return;
            }
            entry.status = upRes.statusCode;
            res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, opts.keepAlive ? withoutConnectionHeaders(upRes.rawHeaders) : upRes.rawHeaders);
            events.emit('response', entry);
            if (a.type === 'pass' || a.type === 'delay' || req.method === 'HEAD') {
              upRes.pipe(res);
              return;
            }
            const contentLength = Number(upRes.headers['content-length'] ?? NaN);
            const limit =
              a.type === 'cutBody'
                ? a.afterBytes
                : a.type === 'stallBody'
                  ? (a.afterBytes ?? 0)
                  : a.type === 'resetAfterHeaders'
                    ? (a.afterBytes ?? (Number.isFinite(contentLength) ? Math.floor(contentLength / 2) : 0))
                    : Infinity;
            let sent = 0;
            const stop = () => {
              upRes.off('data', onData);
              upRes.destroy();
              if (a.type === 'stallBody') return; // keep the client socket open, silent
              // Flush what was written, then kill the connection.
              res.write('', () => destroy());
            };
            const onData = (chunk: Buffer) => {
              const room = limit - sent;
              if (chunk.length < room) {
                sent += chunk.length;
                res.write(chunk);
                return;
              }
              if (room > 0) res.write(chunk.subarray(0, room));
              sent += Math.max(0, room);
              stop();
            };
            if (limit <= 0) {
              // Headers only: make sure they reach the client before stopping.
              res.flushHeaders();
              stop();
              return;
            }
            upRes.on('data', onData);
            upRes.on('end', () => {
              if (sent < limit) res.end(); // body shorter than the cut point: forwarded whole
            });
          };
          if (a.type === 'delay') {
            const t = setTimeout(() => {
              timers.delete(t);
              start();
            }, a.ms);
            timers.add(t);
          } else start();
        },
      );
      up.on('error', () => {
        if (!res.headersSent) destroy();
        else res.destroy();
      });
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
      });
      req.pipe(up);
    }
  });

  let connections = 0;
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  server.on('clientError', (_err, s) => s.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const count = (op?: S3Operation) => (op === undefined ? requests.length : requests.filter((r) => r.op === op).length);
  const answered = (op?: S3Operation) => requests.filter((r) => r.status !== undefined && (op === undefined || r.op === op)).length;
  const latch = (event: string, n: number, current: () => number) => {
    if (current() >= n) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const on = () => {
        if (current() >= n) {
          events.off(event, on);
          resolve();
        }
      };
      events.on(event, on);
    });
  };

  return {
    url: `http://127.0.0.1:${port}`,
    target: targetUrl,
    requests,
    get connections() {
      return connections;
    },
    addRule(spec) {
      const rule: Rule = {
        spec,
        ops: spec.op === undefined ? undefined : new Set(Array.isArray(spec.op) ? spec.op : [spec.op]),
        times: spec.times ?? 1,
        skip: spec.skip ?? 0,
        matched: 0,
        hits: 0,
        removed: false,
        emitter: new EventEmitter(),
      };
      rule.emitter.setMaxListeners(0);
      rules.push(rule);
      return {
        get hits() {
          return rule.hits;
        },
        get matched() {
          return rule.matched;
        },
        get done() {
          return rule.hits >= rule.times;
        },
        remove() {
          rule.removed = true;
        },
        waitForHits(n) {
          if (rule.hits >= n) return Promise.resolve();
          return new Promise<void>((resolve) => {
            const on = (h: number) => {
              if (h >= n) {
                rule.emitter.off('hit', on);
                resolve();
              }
            };
            rule.emitter.on('hit', on);
          });
        },
      };
    },
    clear() {
      for (const r of rules) r.removed = true;
      rules.length = 0;
    },
    waitFor(op, n) {
      return latch('request', n, () => count(op));
    },
    waitForResponses(op, n) {
      return latch('response', n, () => answered(op));
    },
    count,
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}

/**
 * One fault proxy in front of the run's S3 server for a whole test file: started before all
 * tests, its rules cleared after each test (then `afterEachTest` runs, e.g. to close nodes) and
 * closed after all. Call at the top of the file; returns a getter, as the proxy exists only once
 * the file's beforeAll has run.
 *
 *   const proxy = useFaultProxy(async () => { await node?.close(); });
 *   ... proxy().addRule({ op: 'GetObject', action: fault.status(500) }); ... endpoint: proxy().url ...
 */
export function useFaultProxy(afterEachTest?: () => Promise<void>): () => FaultProxy {
  let proxy: FaultProxy | undefined;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3Endpoint());
  });
  afterAll(async () => {
    await proxy?.close();
  });
  afterEach(async () => {
    proxy?.clear();
    await afterEachTest?.();
  });
  return () => {
    if (!proxy) throw new Error('useFaultProxy: the proxy starts in beforeAll; use it inside tests and hooks');
    return proxy;
  };
}

/**
 * A fresh bucket and a storage that reaches it through a fault proxy, for one describe block:
 * rules and the request log are cleared before each test, both are closed after the block.
 */
export function useProxiedStorage(prefix: string, opts: TestStorageOptions = {}): { proxy: () => FaultProxy; storage: () => S3Storage; bucket: () => string } {
  let proxy: FaultProxy | undefined;
  let storage: S3Storage | undefined;
  let bucket: string | undefined;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3Endpoint());
    bucket = await createTestBucket(prefix);
    storage = makeStorage(bucket, { ...opts, endpoint: proxy.url });
  });
  beforeEach(() => {
    proxy?.clear();
    if (proxy) proxy.requests.length = 0;
  });
  afterAll(async () => {
    storage?.close();
    await proxy?.close();
  });
  const get = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('useProxiedStorage: the storage starts in beforeAll; use it inside tests and hooks');
    return v;
  };
  return { proxy: () => get(proxy), storage: () => get(storage), bucket: () => get(bucket) };
}
