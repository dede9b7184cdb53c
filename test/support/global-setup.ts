/**
 * Vitest globalSetup: starts ONE S3 server (moto, or fauxqs, or S3_ENDPOINT) for the whole run
 * and provides its URL to the tests as `inject('s3Endpoint')` (see test/support/env.ts).
 */
import type { TestProject } from 'vitest/node';
import { startS3Server } from './s3-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the run's S3 server, e.g. http://127.0.0.1:41234 */
    s3Endpoint: string;
    /** 'moto' | 'fauxqs' | 'external' */
    s3ServerKind: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const server = await startS3Server();
  project.provide('s3Endpoint', server.url);
  project.provide('s3ServerKind', server.kind);
  return async () => {
    await server.stop();
  };
}
