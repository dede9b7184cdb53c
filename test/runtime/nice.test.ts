// The pool's threads yield the CPU to the host's (`niceIncrement`): an ingest node's own threads
// run first where CPU is short. Linux only: the nice values are read from /proc.
import { describe, expect, it } from 'vitest';
import { ActorPool } from '../../src/actors/runtime/index.js';
import { threadNice } from '../support/proc.js';
import type { Done, Start } from './fixtures/actors.js';

const ACTORS = new URL('./fixtures/actors.ts', import.meta.url);

/** The nice value of each of the pool's `threads` threads, asked of an actor on each (all at once: one a thread). */
async function poolNices(pool: ActorPool): Promise<number[]> {
  const handles = Array.from({ length: pool.threads }, (_, i) => pool.spawn<unknown, Start, Done>(ACTORS, 'niceness', null, { name: `niceness ${i}` }));
  try {
    const answers = handles.map((h) => h.waitFor('iteration.done', { deadlineMs: 20_000 }));
    for (const h of handles) h.send({ type: 'iteration.start', iteration: 0, attempt: 1, payload: {} });
    const done = await Promise.all(answers);
    expect(new Set(done.map((d) => d.result.threadId)).size).toBe(pool.threads);
    return done.map((d) => d.result.echo as number);
  } finally {
    await Promise.all(handles.map((h) => h.terminate('test done')));
  }
}

describe.skipIf(process.platform !== 'linux')('worker threads CPU priority', () => {
  it('every thread of a pool with niceIncrement runs that much below the host; the host thread keeps its own', async () => {
    const host = threadNice();
    const pool = new ActorPool({ threads: 2, niceIncrement: 5 });
    try {
      expect(await poolNices(pool)).toEqual([Math.min(19, host + 5), Math.min(19, host + 5)]);
      expect(threadNice()).toBe(host);
    } finally {
      await pool.close();
    }
  });

  it('without niceIncrement the threads run at the host thread priority', async () => {
    const pool = new ActorPool({ threads: 1 });
    try {
      expect(await poolNices(pool)).toEqual([threadNice()]);
    } finally {
      await pool.close();
    }
  });
});
