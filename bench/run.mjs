// `npm run bench` (builds first, then): runs every scenario, each in its own process, then
// regenerates bench/results/summary.md and chart.svg.
//
//   node bench/run.mjs [--quick] [--only throughput,failure,planning,verify,metadata,bandwidth,cursor-memory,boot-reads,ceiling] [--server moto|fauxqs] [--reps N]
//
// Scenarios: throughput (a, and d: host responsiveness), failure (b), planning (c), verify (e), bandwidth (f),
// cursor-memory (what an open read costs, counted in the budget as CURSOR_MEMORY), boot-reads (g:
// hostReadsWhileBooting off against on), ceiling (h: the raw copy's floors, what every compactor
// must do first).
// Results: bench/results/<name>.json. Never part of `npm test`.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { args, benchDir, log } from './lib.mjs';

const a = args();
const quick = Boolean(a.quick);
const only = typeof a.only === 'string' ? a.only.split(',') : undefined;
const scenarios = [
  ['planning', ['--expose-gc', '--max-old-space-size=16384']],
  ['failure', []],
  ['throughput', []],
  ['verify', []],
  ['metadata', []],
  ['bandwidth', []],
  ['cursor-memory', []],
  ['boot-reads', []],
  ['ceiling', []],
];

function run(name, nodeArgs) {
  const extra = [...(quick ? ['--quick'] : []), ...(a.server ? ['--server', a.server] : []), ...(a.reps ? ['--reps', String(a.reps)] : [])];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs, path.join(benchDir, `${name}.mjs`), ...extra], {
      stdio: 'inherit',
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

const t0 = Date.now();
let failed = 0;
for (const [name, nodeArgs] of scenarios) {
  if (only && !only.includes(name)) continue;
  log(`--- ${name}${quick ? ' (quick)' : ''}`);
  const code = await run(name, nodeArgs);
  if (code !== 0) {
    failed++;
    log(`${name} exited with code ${code}`);
  }
}
await run('readme-table', []);
log(`bench done in ${((Date.now() - t0) / 1000).toFixed(0)} s${failed ? `, ${failed} scenario(s) failed to run` : ''} (targets met or not: see bench/results/summary.md)`);
process.exitCode = failed ? 1 : 0;
