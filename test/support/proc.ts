/** Thread nice values from /proc (Linux): the CPU-priority tests read what the kernel applied. */
import { readdirSync, readFileSync } from 'node:fs';

/** The nice value in a /proc `stat` file (field 19; the command name before it may hold spaces). */
function niceOf(statFile: string): number {
  const stat = readFileSync(statFile, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** The calling thread's nice value. */
export function threadNice(): number {
  return niceOf('/proc/thread-self/stat');
}

/** The nice value of every thread of this process, the main thread first. */
export function processThreadNices(): number[] {
  return readdirSync('/proc/self/task')
    .sort((a, b) => Number(a) - Number(b))
    .flatMap((tid) => {
      try {
        return [niceOf(`/proc/self/task/${tid}/stat`)];
      } catch {
        return []; // a thread that ended while we listed
      }
    });
}
