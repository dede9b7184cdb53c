/**
 * Issue #11, AWS conventions through the SDK's own resolution: the signing region from
 * AWS_DEFAULT_REGION and from a profile's config, never a silent us-east-1; the endpoint from
 * AWS_ENDPOINT_URL_S3, path-style with a host name too; --version. A spy S3 endpoint on loopback
 * records what the built CLI sends (and answers NoSuchBucket, so every command stops there).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureBuilt, lines, runCli } from './helpers.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}
let server: Server;
let port: number;
let seen: Seen[] = [];
let dir: string;

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 's3sc-aws-'));
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    res.writeHead(404, { 'content-type': 'application/xml', 'x-amz-request-id': 'spy' });
    res.end(req.method === 'HEAD' ? undefined : '<?xml version="1.0"?><Error><Code>NoSuchBucket</Code><Message>spy</Message></Error>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
}, 200_000);
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen = [];
});

/**
 * The CLI's environment with no region and no endpoint anywhere (empty values: runCli merges
 * over its defaults, and the SDK, like the CLI, takes an empty variable for an unset one), and
 * shared config files that do not exist.
 */
function bareEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { AWS_CONFIG_FILE: join(dir, 'none-config'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none-credentials') };
  for (const k of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'S3SC_REGION', 'S3SC_ENDPOINT']) env[k] = '';
  return { ...env, ...extra };
}

const inspect = ['--bucket', 'spy-bucket', 'inspect', '10000000/DEFAULT/1'];

function signingRegion(): string | undefined {
  const auth = seen.find((s) => s.headers.authorization)?.headers.authorization ?? '';
  return /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(auth)?.[1];
}

describe('AWS conventions', () => {
  it('signs with AWS_DEFAULT_REGION when AWS_REGION is not set', async () => {
    const r = await runCli(['--endpoint-url', `http://127.0.0.1:${port}`, ...inspect], { env: bareEnv({ AWS_DEFAULT_REGION: 'eu-west-3' }) });
    expect(r.code, r.stderr).toBe(1);
    expect(signingRegion()).toBe('eu-west-3');
  });

  it("signs with the profile's region from the shared config (AWS_PROFILE and --profile)", async () => {
    const config = join(dir, 'config');
    const keys = 'aws_access_key_id = test\naws_secret_access_key = test\n';
    writeFileSync(config, `[profile spy]\nregion = ap-south-1\n${keys}[profile other]\nregion = sa-east-1\n${keys}`);
    const profileOnly = { AWS_CONFIG_FILE: config, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' };
    await runCli(['--endpoint-url', `http://127.0.0.1:${port}`, ...inspect], { env: bareEnv({ ...profileOnly, AWS_PROFILE: 'spy' }) });
    expect(signingRegion()).toBe('ap-south-1');
    seen = [];
    await runCli(['--endpoint-url', `http://127.0.0.1:${port}`, '--profile', 'other', ...inspect], { env: bareEnv(profileOnly) });
    expect(signingRegion()).toBe('sa-east-1');
  });

  it('no region anywhere is a usage error naming where to put one, not a silent us-east-1', async () => {
    const r = await runCli(['--endpoint-url', `http://127.0.0.1:${port}`, ...inspect], { env: bareEnv({}) });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain('no region given');
    expect(r.stderr).toContain('AWS_DEFAULT_REGION');
    expect(seen).toEqual([]);
  });

  it('takes the endpoint from AWS_ENDPOINT_URL_S3, path-style with a host name', async () => {
    const r = await runCli(inspect, { env: bareEnv({ AWS_REGION: 'us-west-2', AWS_ENDPOINT_URL_S3: `http://localhost:${port}` }) });
    expect(r.code, r.stderr).toBe(1);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]!.headers.host).toBe(`localhost:${port}`);
    expect(seen[0]!.url.startsWith('/spy-bucket')).toBe(true);
    expect(signingRegion()).toBe('us-west-2');
  });

  it('--version prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
