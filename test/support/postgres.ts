/**
 * A throwaway PostgreSQL for the test run, the way the suite starts moto: PG_URL when set, else
 * a fresh cluster from the server binaries on this machine (initdb + postgres on a free port, in
 * a temp folder, as the `postgres` user when the suite runs as root). Unavailable: says so loudly
 * and the PostgreSQL tests are skipped (CI refuses that: see .ci/run).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface PgServer {
  /** postgres://user@127.0.0.1:port/postgres, or PG_URL. */
  url: string;
  kind: 'external' | 'local';
  stop(): Promise<void>;
}

function binDir(): string | undefined {
  if (process.env.PG_BIN && existsSync(join(process.env.PG_BIN, 'postgres'))) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Why no server could be started, or the server. */
export async function startPostgres(opts: { fsync?: boolean } = {}): Promise<PgServer | string> {
  if (process.env.PG_URL) return { url: process.env.PG_URL, kind: 'external', stop: async () => {} };
  const bin = binDir();
  if (!bin) return 'no PostgreSQL server binaries (looked in /usr/lib/postgresql/*/bin and PG_BIN); install postgresql, or set PG_URL';
  const asRoot = userInfo().uid === 0;
  const run = (cmd: string, args: string[]) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]) as [string, string[]];
  const dir = mkdtempSync(join(tmpdir(), 's3sc-pg-'));
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) return 'running as root but there is no `postgres` user to run the server as; set PG_URL';
    chownSync(dir, Number(id.stdout.trim()), Number(gid.stdout.trim()));
  }
  const data = join(dir, 'data');
  const user = asRoot ? 'postgres' : userInfo().username;
  const init = spawnSync(...run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', user, '--no-sync', '-E', 'UTF8']), { encoding: 'utf8', timeout: 60_000 });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return `initdb failed: ${(init.stderr || init.stdout || String(init.error)).trim().split('\n').slice(-3).join(' / ')}`;
  }
  const port = await freePort();
  // fsync off for tests: a cluster thrown away at the end (the benchmark keeps it on).
  const child: ChildProcess = spawn(
    ...run(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', `fsync=${opts.fsync ? 'on' : 'off'}`, '-c', 'max_connections=200']),
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const ready = await new Promise<boolean>((resolve) => {
    const deadline = Date.now() + 30_000;
    const onExit = () => resolve(false);
    child.once('exit', onExit);
    const poll = () => {
      if (/ready to accept connections/.test(log)) {
        child.off('exit', onExit);
        resolve(true);
      } else if (Date.now() > deadline) resolve(false);
      else setTimeout(poll, 50);
    };
    poll();
  });
  // The postmaster itself, not runuser (which does not pass signals on): its pid file's first line.
  const postmaster = () => {
    try {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const stop = async () => {
    const pid = postmaster();
    if (pid !== undefined && alive(pid)) {
      process.kill(pid, 'SIGINT'); // fast shutdown: ends the sessions, no checkpoint wait
      const deadline = Date.now() + 10_000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  if (!ready) {
    await stop();
    return `postgres did not start: ${log.trim().split('\n').slice(-3).join(' / ')}`;
  }
  return { url: `postgres://${user}@127.0.0.1:${port}/postgres`, kind: 'local', stop };
}
