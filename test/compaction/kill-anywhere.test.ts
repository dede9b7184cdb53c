/**
 * Issue #10, "kill anywhere": a compaction process SIGKILLed at points spread over its whole run
 * (index reads, data reads, uploads, completes, the commit and right after it, the deletion of
 * compacted objects at the next run's start). After every kill the metadata opens, every live
 * object exists and decodes, every record ever written reads back, and after GC nothing is left
 * over; then a run commits. The child is the built library (dist/) in its own OS process; the
 * parent kills it on what it sees (requests through a proxy, events on the child's stdout).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/compactor/gc.js';
import { decodeObject, parseObjectKey } from '../../src/format/index.js';
import { SqliteMetadataStore } from '../../src/metadata/index.js';
import { startFaultProxy, type FaultProxy, type S3Operation } from '../support/fault-proxy.js';
import { s3Endpoint } from '../support/env.js';
import { createTestNode, MiB, type TestNode } from '../support/node.js';

const CHILD = fileURLToPath(new URL('./fixtures/compact-child.mjs', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const KiB = 1024;
const STREAM_SPLIT = 1 * MiB;
/** The node lease of a child: a killed child's lingers this long before the next run may start. */
const LEASE_TTL_MS = 300;

let node: TestNode;
let proxy: FaultProxy;
let metaPath: string;

beforeAll(async () => {
  proxy = await startFaultProxy(s3Endpoint());
  node = await createTestNode('kill-anywhere', { streams: [1, 2, 3, 4] });
  metaPath = (node.metadata as unknown as { path: string }).path;
}, 120_000);

afterAll(async () => {
  await node?.close();
  await proxy?.close();
});

type Trigger =
  | { kind: 'request'; nth: number }
  | { kind: 'response'; op: S3Operation; nth: number; thenMs: number }
  | { kind: 'event'; type: string };

interface ChildResult {
  killed: boolean;
  code: number | null;
  events: string[];
  stderr: string;
}

/** Runs one compaction in a child process; SIGKILLs it when `trigger` is seen (if ever). */
function runChild(trigger: Trigger | undefined): Promise<ChildResult> {
  proxy.requests.length = 0;
  const cfg = { bucket: node.storage.bucket, endpoint: proxy.url, metadata: metaPath, streamSplitSize: STREAM_SPLIT, leaseTtlMs: LEASE_TTL_MS };
  const child = spawn(process.execPath, [CHILD, JSON.stringify(cfg)], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  let killed = false;
  const kill = () => {
    if (killed || child.exitCode !== null) return;
    killed = true;
    child.kill('SIGKILL');
  };
  if (trigger?.kind === 'request') void proxy.waitFor(undefined, trigger.nth).then(kill);
  if (trigger?.kind === 'response') {
    void proxy.waitForResponses(trigger.op, trigger.nth).then(() => (trigger.thenMs > 0 ? setTimeout(kill, trigger.thenMs) : kill()));
  }
  const events: string[] = [];
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    const type = (JSON.parse(line) as { type: string }).type;
    events.push(type);
    if (trigger?.kind === 'event' && type === trigger.type) kill();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ killed, code, events, stderr }));
  });
}

/**
 * Two SSOs: stream 1 makes a two-part multipart stream object, streams 2-4 an SSO (PutObject).
 * Stream 1's earlier rounds are trimmed away first, so each check reads back what is new (and
 * the trim's deletions give the next run's start something to delete).
 */
async function writeRound(): Promise<void> {
  const [s1] = await node.metadata.getStreams([1]);
  await node.metadata.trimStream(1, s1!.endOffset);
  for (let i = 0; i < 2; i++) await node.writeStreams({ 1: { n: 3, size: 1 * MiB }, 2: { n: 2, size: 2 * KiB }, 3: { n: 1, size: 1 * KiB }, 4: { n: 1, size: 700 } });
}

/** What must hold after any kill: metadata opens, live objects exist and decode, records read back, GC leaves nothing. */
async function expectIntact(): Promise<number> {
  const reopened = new SqliteMetadataStore({ path: metaPath });
  await reopened.close();
  const live = await node.metadata.listAllLiveObjects();
  let bytes = 0;
  for (const o of [...live.streamSetObjects, ...live.streamObjects]) {
    const key = node.storage.keyOf(o.objectId);
    const body = await node.storage.getObject(key);
    expect(body.byteLength, key).toBe(o.objectSize);
    expect(() => decodeObject(body, key)).not.toThrow();
    bytes += body.byteLength;
  }
  await node.verify();
  await collectGarbage(node.storage, node.metadata, { safetyAgeMs: 0, force: true });
  expect(await node.storage.listMultipartUploads()).toEqual([]);
  for (const o of await node.storage.listObjects()) {
    const id = parseObjectKey(o.key)?.objectId;
    expect(id !== undefined && (await node.metadata.isObjectKnown(id)), `${o.key} known after GC`).toBe(true);
  }
  return bytes;
}

/** Runs `fn`, again while a killed holder's node lease has not expired yet (bounded). */
async function afterLeaseExpiry<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20 * LEASE_TTL_MS;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_METADATA_NODE_BUSY' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, LEASE_TTL_MS / 3));
    }
  }
}

describe('kill anywhere (issue #10)', () => {
  it('a compaction process SIGKILLed at points across its whole run loses nothing and leaves nothing after GC', async () => {
    // A calm run: how many requests and upload responses a run makes.
    await writeRound();
    const calm = await runChild(undefined);
    expect(calm.code, calm.stderr).toBe(0);
    expect(calm.events).toContain('run.committed');
    await writeRound();
    const calm2 = await runChild(undefined);
    expect(calm2.code, calm2.stderr).toBe(0);
    const total = proxy.requests.length;
    const puts = proxy.count('PutObject');
    const completes = proxy.count('CompleteMultipartUpload');
    expect(total).toBeGreaterThan(8);
    await expectIntact();

    // Kill points: spread over the requests of a run, the last upload's response (the commit
    // follows at once) and a few ms after it, the commit event itself, the first deletion.
    const triggers: Trigger[] = [];
    for (let k = 1; k <= 8; k++) triggers.push({ kind: 'request', nth: Math.max(1, Math.round((k * total) / 9)) });
    triggers.push({ kind: 'response', op: 'CompleteMultipartUpload', nth: completes, thenMs: 0 });
    triggers.push({ kind: 'response', op: 'PutObject', nth: puts, thenMs: 0 });
    for (const ms of [2, 5, 10, 20]) triggers.push({ kind: 'response', op: 'PutObject', nth: puts, thenMs: ms });
    // Right after the commit, three times: the kill lands between the commit and the child's exit.
    for (let i = 0; i < 3; i++) triggers.push({ kind: 'event', type: 'run.committed' });
    triggers.push({ kind: 'event', type: 'run.planned' });
    triggers.push({ kind: 'event', type: 'iteration.finished' });
    triggers.push({ kind: 'response', op: 'DeleteObjects', nth: 1, thenMs: 0 });

    let kills = 0;
    let committedBeforeKill = 0;
    let bytesVerified = 0;
    const recovery = node.compactor({ streamSplitSize: STREAM_SPLIT });
    for (const trigger of triggers) {
      await writeRound();
      const r = await runChild(trigger);
      if (r.killed) kills++;
      else expect(r.code, r.stderr).toBe(0);
      if (r.events.includes('run.committed')) committedBeforeKill++;
      bytesVerified += await expectIntact();
      // Then a run commits (here, in this process), once the killed child's lease expired.
      await writeRound();
      expect((await afterLeaseExpiry(() => recovery.compactOnce())).committed).toBe(true);
      await expectIntact();
    }
    // After all that, a run commits and everything still reads back.
    await writeRound();
    const last = await runChild(undefined);
    expect(last.code, last.stderr).toBe(0);
    expect(last.events).toContain('run.committed');
    bytesVerified += await expectIntact();
    console.log(`kill anywhere: ${kills} kills of ${triggers.length} runs (${committedBeforeKill} had committed when killed); ${(bytesVerified / MiB).toFixed(1)} MiB of live objects verified`);
    expect(kills).toBeGreaterThanOrEqual(triggers.length - 2);
  }, 300_000);
});
