import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { filter, firstValueFrom } from 'rxjs';
import { ActorPool, MemoryBudget, cancelAll, firstFailure, raceWorker, type ActorHandle } from '../../src/actors/runtime/index.js';
import { StorageError, TimeoutError, WorkerError } from '../../src/errors.js';
import type { HolderIn, HolderOut } from './fixtures/holder.js';
import type { Done, Start, Stats } from './fixtures/actors.js';

const HOLDER = new URL('./fixtures/holder.ts', import.meta.url);
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

describe('actors on worker threads', () => {
  it('cancels actors holding budget: every actor acks, stops, and the budget returns to zero', async () => {
    const piece = 2048;
    const budget = new MemoryBudget(piece * 5);
    const holders = [0, 1].map((i) => track(pool.spawn<unknown, HolderIn, HolderOut>(HOLDER, 'holder', null, { budget, name: `holder ${i}` })));
    // Both well into their work, holding bytes, one of them waiting for budget the other holds.
    const busy = holders.map((h) => firstValueFrom(h.events$.pipe(filter((m) => m.type === 'iteration.progress' && m.items >= 8))));
    for (const h of holders) h.send({ type: 'iteration.start', iteration: 1, attempt: 1, payload: { piece, holdMs: 2 } });
    await Promise.all(busy);
    expect(budget.inUse).toBeGreaterThan(0);

    const acks = holders.map((h) => h.waitFor('cancel.ack', { deadlineMs: 5000 }));
    const unresponsive = await cancelAll(holders, { deadlineMs: 5000, reason: 'test cancel' });
    expect(unresponsive).toEqual([]);
    await Promise.all(acks);
    for (const h of holders) {
      expect(await h.ended).toBe('cancelled');
      expect(h.error).toBeUndefined();
    }
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
