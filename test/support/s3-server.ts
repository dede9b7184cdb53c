/**
 * Starts an S3 server for the tests on 127.0.0.1 (the servers themselves: src/demo/s3-server.ts):
 * - `S3_ENDPOINT` set: that server is used as it is (nothing started);
 * - moto importable (`python3 -c 'import moto'`): `python3 -m moto.server` on a free port;
 * - `S3_TEST_SERVER=fauxqs` (or `moto`) forces one of the two;
 * - else fauxqs in-process (its fastify app listening on 127.0.0.1) — except with CI=true, where
 *   a missing moto is an error: CI must run on moto unless S3_ENDPOINT is set.
 */
import { externalS3, motoAvailable, startFauxqs, startMoto, type S3Server } from '../../src/demo/s3-server.js';

export type { S3Server };

/** Tries to start moto this many times (a new free port each time) before giving up. */
const MOTO_ATTEMPTS = 3;

export async function startS3Server(): Promise<S3Server> {
  const external = externalS3();
  if (external) return external;
  const forced = process.env.S3_TEST_SERVER;
  if (forced === 'fauxqs') return startFauxqs();
  if (forced === 'moto' || motoAvailable()) return startMoto(MOTO_ATTEMPTS);
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
  return startFauxqs();
}
