/**
 * Vitest globalSetup: starts ONE S3 server (moto, or fauxqs, or S3_ENDPOINT) for the whole run
 * and provides its URL to the tests as `inject('s3Endpoint')` (see test/support/env.ts).
 */
import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres.js';
import { startS3Server } from './s3-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the run's S3 server, e.g. http://127.0.0.1:41234 */
    s3Endpoint: string;
    /** 'moto' | 'fauxqs' | 'external' */
    s3ServerKind: string;
    /** The run's PostgreSQL (admin connection string), or '' when none could be started. */
    pgUrl: string;
    /** Why there is no PostgreSQL ('' when there is one). */
    pgUnavailable: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const server = await startS3Server();
  project.provide('s3Endpoint', server.url);
  project.provide('s3ServerKind', server.kind);
  const pg = await startPostgres();
  if (typeof pg === 'string') {
    const banner = `\n${'#'.repeat(78)}\n## NO POSTGRESQL: the PostgreSQL tests are SKIPPED.\n## ${pg}\n${'#'.repeat(78)}\n`;
    process.stderr.write(banner);
    // CI must run them: .ci/run sets S3SC_REQUIRE_POSTGRES.
    if (process.env.S3SC_REQUIRE_POSTGRES) {
      await server.stop();
      throw new Error(`S3SC_REQUIRE_POSTGRES is set but no PostgreSQL could be started: ${pg}`);
    }
  }
  project.provide('pgUrl', typeof pg === 'string' ? '' : pg.url);
  project.provide('pgUnavailable', typeof pg === 'string' ? pg : '');
  return async () => {
    if (typeof pg !== 'string') await pg.stop();
    await server.stop();
  };
}
