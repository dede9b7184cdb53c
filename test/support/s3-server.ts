/**
 * Starts an S3 server for the tests on 127.0.0.1:
 * - `S3_ENDPOINT` set: that server is used as it is (nothing started);
 * - moto importable (`python3 -c 'import moto'`): `python3 -m moto.server` on a free port;
 * - `S3_TEST_SERVER=fauxqs` (or `moto`) forces one of the two;
 * - else fauxqs in-process (its fastify app listening on 127.0.0.1) — except with CI=true, where
 *   a missing moto is an error: CI must run on moto unless S3_ENDPOINT is set.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

export interface S3Server {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  kind: 'external' | 'moto' | 'fauxqs';
  stop(): Promise<void>;
}

export function motoAvailable(): boolean {
  const r = spawnSync('python3', ['-c', 'import moto.server'], { stdio: 'ignore', timeout: 30_000 });
  return r.status === 0;
}

export async function freePort(): Promise<number> {
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

async function startMoto(): Promise<S3Server> {
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child: ChildProcess = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 20_000) stderr += d.toString();
    });
    let exited = false;
    // Never leave moto behind when the test runner exits without teardown.
    const killOnExit = () => {
      if (!exited) child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);
    child.once('exit', () => {
      exited = true;
      process.off('exit', killOnExit);
    });
    // Poll until the server answers: this is process start-up, not test synchronisation.
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

async function startFauxqsServer(): Promise<S3Server> {
  const { buildApp } = await import('fauxqs');
  const app = buildApp({ logger: false, host: '127.0.0.1' });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const url = new URL(address);
  return { url: `http://127.0.0.1:${url.port}`, kind: 'fauxqs', stop: () => app.close() };
}

export async function startS3Server(): Promise<S3Server> {
  const external = process.env.S3_ENDPOINT;
  if (external) return { url: external.replace(/\/+$/, ''), kind: 'external', stop: async () => {} };
  const forced = process.env.S3_TEST_SERVER;
  if (forced === 'fauxqs') return startFauxqsServer();
  if (forced === 'moto' || motoAvailable()) return startMoto();
  if (process.env.CI === 'true') {
    const msg =
      '\n' +
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' +
      '!! CI=true but moto is not installed (python3 -c "import moto" fails).                 !!\n' +
      '!! CI must run the S3 tests on moto: pip install "moto[server]" or set S3_ENDPOINT.      !!\n' +
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n';
    console.error(msg);
    throw new Error('CI=true requires moto (or S3_ENDPOINT) for the S3 tests');
  }
  console.warn('[s3-server] moto is not available: using the in-process fauxqs S3 emulator');
  return startFauxqsServer();
}
