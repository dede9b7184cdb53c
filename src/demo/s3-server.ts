/**
 * An S3 server for the demo, the benchmarks and the tests (test/support/s3-server.ts adds the
 * test run's policy on top), on 127.0.0.1 and a free port:
 * - 'fauxqs': the in-process emulator (a devDependency), its fastify app listening here;
 * - 'moto': `python3 -m moto.server` as a child process (more realistic; benchmarks prefer it);
 * - 'external': `S3_ENDPOINT` as it is.
 *
 * Note: fauxqs refuses request bodies above 11 MiB (its fastify bodyLimit), so multipart parts
 * must stay below that against it (the demo uses 8 MiB parts).
 */
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export type S3ServerKind = 'fauxqs' | 'moto' | 'external';

export interface S3Server {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  kind: S3ServerKind;
  stop(): Promise<void>;
}

export const demoCredentials = { accessKeyId: 'demo', secretAccessKey: 'demo' } as const;
export const demoRegion = 'us-east-1';
/** fauxqs's request body limit. */
export const FAUXQS_MAX_BODY = 11 * 1024 * 1024;

export async function startFauxqs(): Promise<S3Server> {
  const { buildApp } = await import('fauxqs');
  const app = buildApp({ logger: false, host: '127.0.0.1' });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const port = new URL(address).port;
  return { url: `http://127.0.0.1:${port}`, kind: 'fauxqs', stop: () => app.close() };
}

/** True when `python3 -c 'import moto.server'` succeeds. */
export function motoAvailable(): boolean {
  return spawnSync('python3', ['-c', 'import moto.server'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** True once `url` answers any HTTP response. */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

/**
 * `python3 -m moto.server` on a free port, tried up to `attempts` times (a new port each time).
 * The child is killed when this process exits without `stop()`.
 */
export async function startMoto(attempts = 1): Promise<S3Server> {
  let lastErr = '';
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 20_000) stderr += d.toString();
    });
    let exited = false;
    // Never leave moto behind when this process exits without stop().
    const killOnExit = () => {
      if (!exited) child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);
    child.once('exit', () => {
      exited = true;
      process.off('exit', killOnExit);
    });
    // Poll until the server answers: this is process start-up, not synchronisation.
    const deadline = Date.now() + 30_000;
    while (!exited && Date.now() < deadline) {
      if (await answers(`${url}/moto-api/`)) {
        return {
          url,
          kind: 'moto',
          stop: () =>
            new Promise<void>((resolve) => {
              if (exited || child.exitCode !== null) return resolve();
              const t = setTimeout(() => child.kill('SIGKILL'), 3000);
              child.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              child.kill('SIGTERM');
            }),
        };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!exited) child.kill('SIGKILL');
    lastErr = stderr.slice(-2000);
  }
  throw new Error(`moto server did not start on 127.0.0.1: ${lastErr}`);
}

/** `S3_ENDPOINT` (trailing slashes removed) as an 'external' server, or undefined when unset. */
export function externalS3(): S3Server | undefined {
  const external = process.env.S3_ENDPOINT;
  return external ? { url: external.replace(/\/+$/, ''), kind: 'external', stop: async () => {} } : undefined;
}

/** `S3_ENDPOINT` if set, else the requested kind ('auto': moto when importable, else fauxqs). */
export async function startS3(kind: 'fauxqs' | 'moto' | 'auto'): Promise<S3Server> {
  const external = externalS3();
  if (external) return external;
  if (kind === 'moto' || (kind === 'auto' && motoAvailable())) return startMoto();
  return startFauxqs();
}

let bucketCounter = 0;

/** Creates a fresh bucket directly on the server and returns its name. */
export async function createBucket(endpoint: string, prefix: string): Promise<string> {
  const bucket = `${prefix}-${process.pid}-${Date.now().toString(36)}-${bucketCounter++}`.toLowerCase().slice(0, 63);
  const client = new S3Client({ endpoint, region: demoRegion, credentials: { ...demoCredentials }, forcePathStyle: true });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return bucket;
}
