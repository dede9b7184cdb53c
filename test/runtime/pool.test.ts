import { MessageChannel } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { filter, firstValueFrom } from 'rxjs';
import { ActorPool, MemoryBudget, cancelAll, firstFailure, raceWorker, type ActorHandle } from '../../src/actors/runtime/index.js';
import { StorageError, TimeoutError, WorkerError } from '../../src/errors.js';
import type { ConsumerOut, ProducerIn, ProducerOut } from './fixtures/stream.js';
import type { Done, Start, Stats } from './fixtures/actors.js';

const STREAM = new URL('./fixtures/stream.ts', import.meta.url);
const ACTORS = new URL('./fixtures/actors.ts', import.meta.url);
const HEARTBEAT = { heartbeatMs: 50, heartbeatTimeoutMs: 3000 };

let pool: ActorPool;

beforeAll(() => {
  pool = new ActorPool({ threads: 3, ...HEARTBEAT });
});

// A failed test must not leave actors occupying the shared pool's threads.
const spawned: ActorHandle<never, never>[] = [];
function track<H>(h: H): H {
  spawned.push(h as unknown as ActorHandle<never, never>);
  return h;
}
afterEach(async () => {
  await Promise.all(spawned.splice(0).map((h) => h.terminate('test cleanup')));
});

afterAll(async () => {
  await pool.close();
  expect(pool.liveThreads).toBe(0);
});

function spawnStream(budget: MemoryBudget, window: number, delayMs: number) {
  const ch = new MessageChannel();
  const producer = track(pool.spawn<{ name: string }, ProducerIn, ProducerOut>(STREAM, 'producer', { name: 'p' }, { budget, ports: { out: ch.port1 }, name: 'producer' }));
  const consumer = track(pool.spawn<{ window: number; delayMs: number }, never, ConsumerOut>(STREAM, 'consumer', { window, delayMs }, { budget, ports: { in: ch.port2 }, name: 'consumer' }));
  return { producer, consumer };
}

describe('actors on worker threads', () => {
  it('streams transferred buffers through a credit channel within the budget and the window', async () => {
    const size = 4096;
    const nestedSize = 512;
    const msgBytes = size + 2 * nestedSize;
    const window = msgBytes * 3;
    const budget = new MemoryBudget(msgBytes * 4);
    const { producer, consumer } = spawnStream(budget, window, 2);
    const consumerDone = consumer.waitFor('iteration.done', { deadlineMs: 30_000 });
    const producerDone = producer.waitFor('iteration.done', { deadlineMs: 30_000 });
    producer.send({ type: 'iteration.start', iteration: 1, attempt: 1, payload: { count: 60, size, nestedSize } });
    const [p, c] = await Promise.all([producerDone, consumerDone]);

    expect(c.result.received).toBe(60);
    expect(c.result.inOrder).toBe(true);
    expect(c.result.contentOk).toBe(true);
    expect(c.result.window).toBe(window);
    expect(c.result.maxHeldBytes).toBeLessThanOrEqual(window);
    expect(c.result.maxQueuedBytes).toBeLessThanOrEqual(window);
    expect(p.result.sent).toBe(61);
    expect(p.result.maxBytesInFlight).toBeLessThanOrEqual(window);
    expect(p.result.maxBytesInFlight).toBeGreaterThan(0);
    expect(p.result.maxPendingBytes).toBeLessThanOrEqual(msgBytes);
    // moved, not copied: the producer's buffers (nested ones included) are detached after send
    expect(p.result.allDetached).toBe(true);
    expect(p.result.copiedTransfers).toBe(0);

    expect(budget.highWater).toBeLessThanOrEqual(budget.limit);
    expect(budget.highWater).toBeGreaterThan(0);
    await expect(consumer.ended).resolves.toBe('completed');
    await producer.stop();
    await expect(producer.exited).resolves.toBeUndefined();
    expect(budget.inUse).toBe(0);
  });

  it('cancels in the middle of a stream: every actor acks, stops, and the budget returns to zero', async () => {
    const msgBytes = 2048 + 2 * 256;
    const budget = new MemoryBudget(msgBytes * 5);
    const { producer, consumer } = spawnStream(budget, msgBytes * 4, 5);
    // an endless stream; cancel once the consumer is well into it
    const progress = firstValueFrom(consumer.events$.pipe(filter((m) => m.type === 'iteration.progress' && m.items >= 16)));
    producer.send({ type: 'iteration.start', iteration: 1, attempt: 1, payload: { count: -1, size: 2048, nestedSize: 256 } });
    await progress;
    expect(budget.inUse).toBeGreaterThan(0);

    const acks = [producer, consumer].map((h) => h.waitFor('cancel.ack', { deadlineMs: 5000 }));
    const unresponsive = await cancelAll([producer, consumer], { deadlineMs: 5000, reason: 'test cancel' });
    expect(unresponsive).toEqual([]);
    await Promise.all(acks);
    expect(await producer.ended).toBe('cancelled');
    expect(await consumer.ended).toBe('cancelled');
    expect(producer.error).toBeUndefined();
    expect(consumer.error).toBeUndefined();
    expect(budget.inUse).toBe(0);
    expect(budget.highWater).toBeLessThanOrEqual(budget.limit);
  });

  it('an actor error crosses the thread with its class, code, retryable flag and cause', async () => {
    const h = track(pool.spawn<unknown, Start, Done>(ACTORS, 'faulty', null, { name: 'storage' }));
    h.send({ type: 'iteration.start', iteration: 3, attempt: 1, payload: { mode: 'storage' } });
    const failedMsg = h.waitFor('failed', { deadlineMs: 10_000 }).catch((e: unknown) => e);
    const err = await h.failure;
    expect(err).toBeInstanceOf(StorageError);
    const se = err as StorageError;
    expect(se.code).toBe('ERR_STORAGE_UNAVAILABLE');
    expect(se.retryable).toBe(true);
    expect(se.operation).toBe('UploadPart');
    expect(se.key).toBe('objects/42');
    expect(se.status).toBe(503);
    expect(se.cause).toBeInstanceOf(TimeoutError);
    expect((se.cause as TimeoutError).timeoutMs).toBe(1500);
    const root = (se.cause as TimeoutError).cause as Error & { code?: string };
    expect(root).toBeInstanceOf(Error);
    expect(root.message).toBe('socket hang up');
    expect(root.code).toBe('ECONNRESET');
    await failedMsg;
    await expect(h.exited).rejects.toBeInstanceOf(StorageError);
  });

  it('ctx.fail reports a typed failure while the actor stays alive until cancelled', async () => {
    const h = track(pool.spawn<unknown, Start, Done>(ACTORS, 'faulty', null, { name: 'reporter' }));
    h.send({ type: 'iteration.start', iteration: 5, attempt: 2, payload: { mode: 'report' } });
    const { handle, error } = await firstFailure([h]);
    expect(handle).toBe(h);
    expect(error).toBeInstanceOf(StorageError);
    expect(error.code).toBe('ERR_STORAGE_TIMEOUT');
    expect(h.state).toBe('running');
    await h.cancel({ deadlineMs: 5000 });
    expect(await h.ended).toBe('failed');
  });

  describe.each([
    ['uncaught', 'ERR_WORKER_CRASHED'],
    ['throw', 'ERR_WORKER_CRASHED'],
    ['exit', 'ERR_WORKER_EXITED'],
    ['spin', 'ERR_WORKER_UNRESPONSIVE'],
  ] as const)('a worker that misbehaves (%s)', (mode, code) => {
    it(`is detected as ${code}, its comlink calls reject, and the pool replaces the thread`, async () => {
      const h = track(pool.spawn<unknown, Start, Done>(ACTORS, 'faulty', null, { name: `faulty-${mode}` }));
      // a healthy comlink call first
      const before = await h.call<{ stats(): Stats }, Stats>((r) => r.stats(), { deadlineMs: 10_000 });
      expect(before.threadId).toBe(h.threadId);
      const threadId = h.threadId!;

      const iterationDone = h.waitFor('iteration.done', { deadlineMs: 10_000 });
      h.send({ type: 'iteration.start', iteration: 1, attempt: 1, payload: { mode } });
      const err = await iterationDone.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkerError);
      expect((err as WorkerError).code).toBe(code);
      expect((err as WorkerError).retryable).toBe(true);
      expect(h.error).toBe(err);

      // a control call to the dead or spinning actor rejects instead of hanging
      await expect(h.call<{ stats(): Stats }, Stats>((r) => r.stats(), { deadlineMs: 3000 })).rejects.toBeInstanceOf(WorkerError);
      await expect(h.exited).rejects.toBeInstanceOf(WorkerError);
      expect(h.state).toBe('ended');
      // a dead or killed thread is gone (an actor that merely threw leaves a healthy thread);
      // either way the pool runs a new actor fine
      if (mode !== 'throw') expect(pool.threadIds).not.toContain(threadId);
      const next = track(pool.spawn<unknown, Start, Done>(ACTORS, 'echo', null, { name: `after-${mode}` }));
      const done = next.waitFor('iteration.done', { deadlineMs: 20_000 });
      next.send({ type: 'iteration.start', iteration: 2, attempt: 1, payload: { mode: 'ok' } });
      expect((await done).result.echo).toEqual({ mode: 'ok' });
      const stats = await next.call<{ stats(): Stats }, Stats>((r) => r.stats(), { deadlineMs: 5000 });
      expect(stats.handled).toBe(1);
      expect(await next.stop()).toBe('stopped');
    });
  });

  it('an actor that does not ack a cancel within the deadline is terminated as unresponsive', async () => {
    const h = track(pool.spawn<unknown, Start, Done>(ACTORS, 'faulty', null, { name: 'deaf' }));
    h.send({ type: 'iteration.start', iteration: 1, attempt: 1, payload: { mode: 'ignore-cancel' } });
    await h.waitFor('heartbeat', { deadlineMs: 10_000 });
    const err = await h.cancel({ deadlineMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).code).toBe('ERR_WORKER_UNRESPONSIVE');
    await expect(h.exited).rejects.toBe(err);
  });

  it('raceWorker bounds a call that never answers', async () => {
    const h = track(pool.spawn<unknown, Start, Done>(ACTORS, 'echo', null, { name: 'race' }));
    const never = new Promise<never>(() => {});
    const err = await raceWorker(never, h, { deadlineMs: 200, what: 'never' }).catch((e: unknown) => e);
    expect((err as WorkerError).code).toBe('ERR_WORKER_UNRESPONSIVE');
    expect((err as WorkerError).cause).toBeInstanceOf(TimeoutError);
    await h.stop();
    const after = await raceWorker(never, h, { deadlineMs: 10_000 }).catch((e: unknown) => e);
    expect((after as WorkerError).code).toBe('ERR_WORKER_EXITED');
  });
});

describe('ActorPool.close', () => {
  it('terminates running actors and leaves no worker threads', async () => {
    const p = new ActorPool({ threads: 2, ...HEARTBEAT });
    const handles: ActorHandle<Start, Done>[] = [0, 1].map((i) => p.spawn<unknown, Start, Done>(ACTORS, 'echo', null, { name: `close-${i}` }));
    await Promise.all(handles.map((h) => h.waitFor('ready', { deadlineMs: 20_000 })));
    expect(p.liveThreads).toBe(2);
    await p.close();
    expect(p.liveThreads).toBe(0);
    for (const h of handles) {
      expect(h.state).toBe('ended');
      await expect(h.exited).rejects.toBeInstanceOf(WorkerError);
    }
    expect(() => p.spawn(ACTORS, 'echo', null)).toThrow(/closed/);
  });
});
