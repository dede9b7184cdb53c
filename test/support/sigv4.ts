/**
 * An independent SigV4 check of a request the fault proxy saw: recomputes the signature from
 * what went over the wire (method, path, query, signed headers, and the payload hash the request
 * names) and compares it with the one sent. moto checks no signature, so without this a request
 * whose signature does not match its headers would pass every test and fail on real S3.
 */
import { createHash, createHmac } from 'node:crypto';
import type { ProxiedRequest } from './fault-proxy.js';

const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** Undefined when the signature is right; otherwise what differs. */
export function sigV4Mismatch(req: Pick<ProxiedRequest, 'method' | 'path' | 'headers'>, secretAccessKey: string): string | undefined {
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const auth = header('authorization') ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=[^/]+\/([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return `not a SigV4 Authorization header: ${auth}`;
  const [, scope, signedHeaders, signature] = m as unknown as [string, string, string, string];
  const [date, region, service] = scope.split('/') as [string, string, string];
  const [path, query = ''] = req.path.split('?', 2) as [string, string?];
  // Sent already encoded by the client: sort the pairs as they are; a bare name signs as `name=`.
  const canonicalQuery = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => (p.includes('=') ? p : `${p}=`))
    .sort()
    .join('&');
  const names = signedHeaders.split(';');
  const canonicalHeaders = names.map((n) => `${n}:${(header(n) ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const payloadHash = header('x-amz-content-sha256') ?? '';
  const canonical = [req.method, path, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', header('x-amz-date') ?? '', scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', key).update(toSign).digest('hex');
  return expected === signature ? undefined : `signature ${signature} does not match ${expected} over:\n${canonical}`;
}
