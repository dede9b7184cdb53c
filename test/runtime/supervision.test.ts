import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import { ActorPool, cancelAll, runWithRestarts, type SupervisionEvent } from '../../src/actors/runtime/index.js';
import { AbortError, StorageError } from '../../src/errors.js';
import type { Done, Start } from './fixtures/actors.js';

const ACTORS = new URL('./fixtures/actors.ts', import.meta.url);
let pool: ActorPool;

beforeAll(() => {
  pool = new ActorPool({ threads: 2, heartbeatMs: 50, heartbeatTimeoutMs: 3000 });
});
afterAll(async () => {
  await pool.close();
  expect(pool.liveThreads).toBe(0);
});

/** One attempt of an "iteration" on a fresh actor, torn down whatever happens. */
function attemptWith(modes: string[]) {
  return async (attempt: number, signal: AbortSignal): Promise<Done> => {
    const h = pool.spawn<unknown, Start, Done>(ACTORS, 'faulty', null, { name: `attempt-${attempt}` });
    try {
      const done = h.waitFor('iteration.done', { deadlineMs: 10_000, signal });
      h.send({ type: 'iteration.start', iteration: 1, attempt, payload: { mode: modes[attempt - 1] ?? 'ok' } });
      return await done;
    } finally {
      await cancelAll([h], { deadlineMs: 2000 });
    }
  };
}

function collect() {
  const events: SupervisionEvent[] = [];
  const subject = new Subject<SupervisionEvent>();
  subject.subscribe((e) => events.push(e));
  return { events, subject, types: () => events.map((e) => e.type) };
}

describe('runWithRestarts', () => {
  it('restarts a retryable failure after backoff and succeeds', async () => {
    const { subject, events, types } = collect();
    const done = await runWithRestarts(attemptWith(['storage', 'ok']), { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, events: subject });
    expect(done.iteration).toBe(1);
    expect(types()).toEqual(['attempt.started', 'attempt.failed', 'restart.scheduled', 'attempt.started', 'attempt.succeeded']);
    const failed = events[1] as Extract<SupervisionEvent, { type: 'attempt.failed' }>;
    expect(failed.retryable).toBe(true);
    expect(failed.error).toBeInstanceOf(StorageError);
    const scheduled = events[2] as Extract<SupervisionEvent, { type: 'restart.scheduled' }>;
    expect(scheduled.delayMs).toBeGreaterThanOrEqual(5);
    expect(scheduled.delayMs).toBeLessThanOrEqual(50);
  });

  it('gives up after maxAttempts retryable failures with the last typed error', async () => {
    const { subject, events, types } = collect();
    const err = await runWithRestarts(attemptWith(['storage', 'storage', 'storage', 'ok']), { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, events: subject }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('ERR_STORAGE_UNAVAILABLE');
    expect(types()).toEqual([
      'attempt.started',
      'attempt.failed',
      'restart.scheduled',
      'attempt.started',
      'attempt.failed',
      'restart.scheduled',
      'attempt.started',
      'attempt.failed',
      'gave.up',
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'gave.up', attempt: 3, reason: 'exhausted' });
  });

  it('fails at once on a fatal error', async () => {
    const { subject, events, types } = collect();
    const err = await runWithRestarts(attemptWith(['fatal', 'ok']), { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 20, events: subject }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('ERR_STORAGE_ACCESS_DENIED');
    expect((err as StorageError).retryable).toBe(false);
    expect(types()).toEqual(['attempt.started', 'attempt.failed', 'gave.up']);
    expect(events.at(-1)).toMatchObject({ type: 'gave.up', attempt: 1, reason: 'fatal' });
  });

  it('a crashed worker is a retryable WorkerError', async () => {
    const { subject, types } = collect();
    const done = await runWithRestarts(attemptWith(['exit', 'ok']), { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20, events: subject });
    expect(done.result.echo).toEqual({ mode: 'ok' });
    expect(types()).toEqual(['attempt.started', 'attempt.failed', 'restart.scheduled', 'attempt.started', 'attempt.succeeded']);
  });

  it('an abort during the backoff ends the run with AbortError', async () => {
    const { subject, types } = collect();
    const ac = new AbortController();
    subject.subscribe((e) => {
      if (e.type === 'restart.scheduled') ac.abort();
    });
    const err = await runWithRestarts(
      async () => {
        throw new StorageError('ERR_STORAGE_UNAVAILABLE', 'x', { operation: 'GetObject' }, { retryable: true });
      },
      { maxAttempts: 5, baseDelayMs: 10_000, maxDelayMs: 10_000, events: subject, signal: ac.signal },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(types()).toEqual(['attempt.started', 'attempt.failed', 'restart.scheduled', 'gave.up']);
  });
});
