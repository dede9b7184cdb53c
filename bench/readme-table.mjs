// Regenerates the README benchmark table (and bench/results/chart.svg) from bench/results/*.json.
// Writes the markdown to stdout and to bench/results/summary.md.
//
//   node bench/readme-table.mjs
import fs from 'node:fs';
import path from 'node:path';
import { readResult, resultsDir, round } from './lib.mjs';

const tp = readResult('throughput');
const fail = readResult('failure');
const plan = readResult('planning');
const ver = readResult('verify');
const meta = readResult('metadata');
const bw = readResult('bandwidth');
const cur = readResult('cursor-memory');
const boot = readResult('boot-reads');
const ceil = readResult('ceiling');

const yes = (c) => (c ? 'met' : '**not met**');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : String(x));
const lines = [];
const push = (s = '') => lines.push(s);

push('## Benchmarks');
push();
const any = tp ?? fail ?? plan;
if (!any) {
  push('No results yet: run `npm run bench`.');
} else {
  const m = any.machine;
  push(
    `Measured on ${m.cpus} × ${m.cpuModel}, ${Math.round(m.totalMemMiB / 1024)} GiB, Node ${any.node}` +
      (tp ? `, S3 server: **${tp.serverKind}** on loopback${tp.quick ? ' (quick run)' : ''}` : '') +
      `, ${any.date.slice(0, 10)}. Load average at start: ${m.loadavg.join(' / ')} (a shared machine: absolute numbers are noisy; ratios are from the same run).`,
  );
  push();
}

if (tp) {
  const p = tp.parameters;
  push(`### Throughput, memory and CPU (SSOs of ${p.streams} streams, Zipf sizes; partSize ${p.partSizeMiB} MiB, ${p.readsInFlight} GETs / ${p.partsInFlight} parts in flight; metadata ${p.store === 'thread' ? 'SqliteThreadStore' : 'SqliteMetadataStore'})`);
  push();
  const warm = Object.values(tp.results).some((k) => k.results.compactorWarm);
  push(
    `| case | compactor MiB/s | raw copy | straightforward | compactor / raw (≥ 0.9) | / straightforward (≥ 1.5 under latency) | CPU ms/MiB: compactor, raw (≤ 1.5×) |${warm ? ' warm (second run): compactor, raw MiB/s, ratio; CPU ratio |' : ''} RSS growth (≤ limit + 64 MiB) | budget high-water (≤ limit) | event-loop p99: host, idle process (≤ idle + 1 ms resolution) |`,
  );
  push(`|---|---:|---:|---:|---:|---:|---:|${warm ? '---:|' : ''}---:|---:|---:|`);
  for (const [name, k] of Object.entries(tp.results)) {
    const { compactor: c, raw, straightforward: s } = k.results;
    const t = tp.targets[name];
    const vsS = t['compactor/straightforward >= 1.5'];
    // Ratios: the median of the per-repetition ratios (older result files: the one run's).
    const r = k.ratios ?? { vsRaw: c.mibPerS / raw.mibPerS, vsStraightforward: c.mibPerS / s.mibPerS, rssGrowthMiB: c.rssGrowthMiB, peakBudgetMiB: c.peakBudgetMiB };
    const { compactorWarm: cw, rawWarm: rw } = k.results;
    const warmCell = !warm ? '' : cw && rw ? ` ${f1(cw.mibPerS)}, ${f1(rw.mibPerS)}, ${r.warmVsRaw.toFixed(2)}; ${r.warmCpuVsRaw.toFixed(2)}× |` : ' |';
    push(
      `| ${name} | ${f1(c.mibPerS)} | ${f1(raw.mibPerS)} | ${f1(s.mibPerS)} | ${r.vsRaw.toFixed(2)} ${yes(t['compactor/raw >= 0.9'].pass)} | ` +
        `${r.vsStraightforward.toFixed(2)}${vsS ? ` ${yes(vsS.pass)}` : ''} | ${f1(c.cpuMsPerMiB)}, ${f1(raw.cpuMsPerMiB)} (${(r.cpuVsRaw ?? c.cpuMsPerMiB / raw.cpuMsPerMiB).toFixed(2)}×) ${yes(t['CPU/MiB <= 1.5 x raw'].pass)} |${warmCell} ` +
        `${r.rssGrowthMiB.toFixed(0)} MiB ${yes(t['RSS growth <= memoryLimit + 64 MiB'].pass)} | ${r.peakBudgetMiB.toFixed(1)} MiB ${yes(t['budget high-water <= memoryLimit'].pass)} | ` +
        `${f1(c.eventLoop.p99Ms)}, ${f1(c.idleEventLoop.p99Ms)} ms ${yes(t['event-loop p99 <= idle process'].pass)} |`,
    );
  }
  push();
  if (p.reps > 1) push(`Each case ran ${p.reps} times, each on a fresh ingest, the three approaches back to back; MiB/s, CPU and the event loop are each approach's run of median throughput, the ratios, RSS growth and budget the medians over the repetitions (the ratios taken within each repetition).`);
  const phased = Object.values(tp.results).some((k) => k.results.compactor.plannedMs !== undefined);
  if (phased) {
    push();
    push('Where the compactor run of median throughput spent its time, and the requests each approach sent (all operations; the compactor\'s include its index reads):');
    push();
    push('| case | compactor wall | until planned (thread boot when cold, index reads, or whole objects when they fit, planning) | warm: until planned | requests: compactor (GETs), raw copy (GETs) |');
    push('|---|---:|---:|---:|---:|');
    const total = (q) => Object.values(q ?? {}).reduce((n, x) => n + x, 0);
    for (const [name, k] of Object.entries(tp.results)) {
      const { compactor: c, raw, compactorWarm: cw } = k.results;
      if (c.plannedMs === undefined) continue;
      push(
        `| ${name} | ${(c.wallMs / 1000).toFixed(2)} s | ${(c.plannedMs / 1000).toFixed(2)} s (${Math.round((100 * c.plannedMs) / c.wallMs)} %) | ${cw?.plannedMs === undefined ? '' : `${(cw.plannedMs / 1000).toFixed(2)} s`} | ` +
          `${total(c.requests)} (${c.requests.GetObject ?? 0}), ${total(raw.requests)} (${raw.requests?.GetObject ?? 0}) |`,
      );
    }
  }
  if (warm) {
    push();
    push('Warm: a second run in the same process, as a compactor that stays up between scheduled runs would make it (threads booted, code compiled, connections open), against a raw copy that is as warm: each first ingests 16 MiB of other streams and compacts (raw-copies) it, then ingests the same data as the cold runs and is measured. The compactor then also reads the SSO its first run wrote. Not judged against the targets (the cold runs are); reported because it is how an embedded compactor mostly runs.');
  }
  push();
  push('Raw copy: the same objects range-read and multipart-uploaded with the SDK at the same concurrency, no processing (the practical ceiling). Straightforward: one thread, whole objects read one by one, blocks concatenated in memory, uploaded with lib-storage `Upload`. Each approach runs in its own process (CPU: all its threads; RSS growth: peak minus the RSS before the approach started, worker threads included); the +30 ms profile goes through the fault proxy (`delay` before the first response byte of every request). The event-loop delay is `monitorEventLoopDelay` (1 ms resolution) on the main thread, recording from before the run starts (its timer ticked twice first: it records nothing before its second tick), beside an idle Node process measuring itself in the same window.');
  push();
}

if (fail) {
  const f = fail.results.fatal403;
  const s = fail.results.stalledSocket;
  push(`### Failure latency (${fail.serverKind}, via the fault proxy)`);
  push();
  push('| case | result | target | |');
  push('|---|---|---|---|');
  push(`| 403 on UploadPart → \`compactOnce\` rejects (${f.runs} runs) | p50 ${f1(f.p50Ms)} ms, p99 ${f1(f.p99Ms)} ms, ${f.errorCodes.join(', ')} | p99 < 200 ms | ${yes(fail.targets['403: p99 time to rejection < 200 ms'].pass)} |`);
  push(`| … budget released at rejection | ${f.allReleasedAtReject ? 'inUse = 0 in every run' : 'inUse > 0 in some run'} | inUse = 0 | ${yes(f.allReleasedAtReject)} |`);
  push(`| stalled UploadPart, requestTimeoutMs ${s.requestTimeoutMs}, no retries (${s.runs} runs) | max ${f1(s.maxMs)} ms after the request reached the proxy, ${s.errorCodes.join(', ')} | ≤ ${s.requestTimeoutMs + 100} ms | ${yes(fail.targets['stall: time to failure <= requestTimeoutMs + 100 ms'].pass)} |`);
  push();
}

if (plan) {
  push('### Planning scale (`planCompaction`, pure)');
  push();
  push('| entries | time (best of runs) | input heap / entry | plan heap / entry | target < 1 s |');
  push('|---|---:|---:|---:|---|');
  for (const [name, r] of Object.entries(plan.results)) {
    push(`| ${name.replace('x', ' SSOs × ')} streams = ${(r.entries / 1e6).toFixed(0)} M | ${r.planBestMs} ms (${r.planMs.join(' / ')}) | ${r.inputBytesPerEntry} B | ${r.planBytesPerEntry} B | ${yes(plan.targets[`${name}: planCompaction < 1 s`].pass)} |`);
  }
  push();
}

if (ver) {
  const p = ver.parameters;
  const r = ver.results;
  push(`### Verify speed (the demo's data: ${p.mib} MiB over ${p.streams} streams, ${p.objects} SSOs; both through the CLI on ${ver.serverKind}, ${ver.date.slice(0, 10)})`);
  push();
  push('| | time | / compaction | target |');
  push('|---|---:|---:|---|');
  push(`| \`compact\` | ${(r.compactMs / 1000).toFixed(1)} s | 1 | |`);
  push(`| \`verify\` (each object read once) | ${(r.verifyMs / 1000).toFixed(1)} s | ${r.verifyOverCompact} | ≤ 1.5: ${yes(ver.targets['verify <= 1.5 x compaction'].pass)} |`);
  push(`| old verify (readStream per stream; ${r.baselineSample} streams timed, scaled) | ≈ ${(r.baselineVerifyMs / 1000).toFixed(0)} s | ${r.baselineOverCompact} | |`);
  push();
}

if (meta) {
  const p = meta.parameters;
  push(`### Metadata commits (${p.commitsPerNode} commits per node, ${p.rangesPerCommit} stream ranges each, every fifth a compaction of four; SQLite ${p.sqliteSynchronous}, PostgreSQL 15 fsync ${p.postgresFsync}; ${meta.date.slice(0, 10)})`);
  push();
  push('| store, nodes committing at once | p50 | p99 | commits/s (all nodes) |');
  push('|---|---:|---:|---:|');
  for (const [k, r] of Object.entries(meta.results)) push(`| ${k} | ${r.p50Ms} ms | ${r.p99Ms} ms | ${r.commitsPerS} |`);
  push();
}

if (bw) {
  const p = bw.parameters;
  push(`### Bandwidth limit (${p.mib} MiB of SSOs, memoryLimit ${p.memoryLimitMiB} MiB, ${bw.serverKind}, ${bw.date.slice(0, 10)})`);
  push();
  push('| limit | wall time | MiB moved (reads + writes) | measured MiB/s | requests waited (summed over concurrent ones) | within ±10 % |');
  push('|---|---:|---:|---:|---:|---|');
  for (const [name, r] of Object.entries(bw.results)) {
    const t = bw.targets[name];
    push(`| ${name} | ${r.wallS} s | ${r.movedMiB} | ${r.measuredMiBps} | ${r.waitedS} s | ${t ? `${t.value} ${yes(t.pass)}` : ''} |`);
  }
  push();
}

if (cur) {
  const p = cur.parameters;
  const list = (rs) => rs.map((r) => r.rssKiB).join(', ');
  push(`### Memory of an open read (${p.cursors} paused GETs; ${cur.serverKind}, ${cur.date.slice(0, 10)}; counted in the budget as ${cur.counted.cursorMemoryKiB} KiB)`);
  push();
  push('| measured | RSS a paused read, each repetition | |');
  push('|---|---|---|');
  push(`| alone: ${p.cursors} opened in a fresh process | ${list(cur.results.alone)} KiB (ArrayBuffers ${list(cur.results.alone.map((r) => ({ rssKiB: r.arrayBuffersKiB })))} KiB) | |`);
  push(`| in a run: ${p.run}, all open against none, same data budget | ${list(cur.results.inRun)} KiB | ${yes(cur.targets.inRun.pass)} (≤ ${cur.counted.cursorMemoryKiB} KiB) |`);
  push();
}

if (boot) {
  const p = boot.parameters;
  push(`### Reads on the host while the threads boot (\`hostReadsWhileBooting\`; a first run right after \`new Compactor()\`, ${p.mib} MiB of SSOs under ${p.memoryLimitMiB} MiB; ${boot.serverKind}, ${boot.date.slice(0, 10)})`);
  push();
  push('| case | plan at: off, on | MiB/s: off, on | host event loop p99: off, on | host max delay: off, on |');
  push('|---|---:|---:|---:|---:|');
  for (const [profile, r] of Object.entries(boot.results)) {
    push(`| ${profile} | ${r.off.plannedMs}, ${r.on.plannedMs} ms | ${f1(r.off.mibPerS)}, ${f1(r.on.mibPerS)} | ${r.off.eventLoopP99Ms}, ${r.on.eventLoopP99Ms} ms | ${f1(r.off.eventLoopMaxMs)}, ${f1(r.on.eventLoopMaxMs)} ms |`);
  }
  push();
  push(`Medians of ${p.reps} alternated pairs, each run on a fresh ingest of the same data. Off by default (the host's event loop carries the reads); the CLI turns it on.`);
  push();
}

if (ceil) {
  const p = ceil.parameters;
  push(`### What the raw copy leaves room for (floors: the raw copy plus only what every compactor must do first; ${ceil.serverKind}, ${ceil.date.slice(0, 10)})`);
  push();
  push('| case | raw copy MiB/s | index reads first (range-reading path) | all reads first (whole-object path) | index reads beside the copy (no schedule: a relaxation) | compactor, limit ' + p.memoryLimitMiB + ' MiB |');
  push('|---|---:|---:|---:|---:|---:|');
  const cell = (x) => `${x.vsRaw.toFixed(2)}x, CPU ${x.cpuVsRaw.toFixed(2)}x`;
  for (const [name, k] of Object.entries(ceil.cases)) {
    const q = k.approaches;
    push(`| ${name} | ${f1(q.raw.mibPerS)} | ${cell(q.rawAfterIndex)} | ${cell(q.rawReadFirst)} | ${cell(q.rawIndexOverlap)} | ${cell(q.compactor)} |`);
  }
  push();
  push(
    `Throughput and CPU per MiB as ratios to the raw copy, medians over ${p.reps} repetitions (each on a fresh ingest of the throughput table's data, the floors in rotating order, the compactor last). ` +
      'Index reads first: every source\'s index read as the planner reads it (one tail GET each, 16 in flight) while a worker thread loads the SDK, then the raw copy. ' +
      'All reads first: every GET of the raw copy (while the thread boots) before its first upload. ' +
      'A floor under 0.9x bounds every compactor that takes its path here, however well built (`bench/ceiling.mjs`).',
  );
  push();
}

const md = lines.join('\n');
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, 'summary.md'), md + '\n');
process.stdout.write(md + '\n');
if (tp) fs.writeFileSync(path.join(resultsDir, 'chart.svg'), chart(tp));

// The README's table is this summary, between its markers: regenerated, never edited by hand.
const readme = path.join(resultsDir, '..', '..', 'README.md');
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';
const text = fs.readFileSync(readme, 'utf8');
const a = text.indexOf(START);
const b = text.indexOf(END);
if (a >= 0 && b > a) {
  const body = md.replace(/^## Benchmarks\n+/, '');
  fs.writeFileSync(readme, `${text.slice(0, a + START.length)}\n${body}\n\n![throughput chart](bench/results/chart.svg)\n${text.slice(b)}`);
}

/** Grouped bars: MiB/s per approach, one group per latency profile. Hand-written SVG. */
function chart(tp) {
  const profiles = Object.keys(tp.results);
  const approaches = [
    ['raw', 'raw copy (ceiling)', '#9aa5b1'],
    ['compactor', 'compactor', '#2b7bb9'],
    ['straightforward', 'straightforward', '#e08a3c'],
  ];
  const W = Math.max(720, 60 + 150 * profiles.length);
  const H = 400;
  const left = 60;
  const bottom = 60;
  const top = 50;
  const plotH = H - top - bottom;
  const max = Math.max(...profiles.flatMap((p) => approaches.map(([k]) => tp.results[p].results[k].mibPerS)));
  const step = niceStep(max / 5);
  const yMax = Math.ceil(max / step) * step;
  const groupW = (W - left - 20) / profiles.length;
  const barW = Math.min(60, (groupW - 40) / approaches.length);
  const y = (v) => top + plotH - (v / yMax) * plotH;
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">\n`;
  svg += `<rect width="${W}" height="${H}" fill="white"/>\n`;
  svg += `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Compaction throughput, MiB/s (${esc(tp.serverKind)}, ${tp.parameters.streams} streams)</text>\n`;
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    svg += `<line x1="${left}" x2="${W - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>\n`;
    svg += `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${round(v, 1)}</text>\n`;
  }
  svg += `<text x="16" y="${top + plotH / 2}" transform="rotate(-90 16 ${top + plotH / 2})" text-anchor="middle">MiB/s</text>\n`;
  profiles.forEach((p, gi) => {
    const gx = left + gi * groupW + (groupW - barW * approaches.length) / 2;
    approaches.forEach(([k, , color], ai) => {
      const v = tp.results[p].results[k].mibPerS;
      const x = gx + ai * barW;
      svg += `<rect x="${x + 4}" y="${y(v)}" width="${barW - 8}" height="${top + plotH - y(v)}" fill="${color}"/>\n`;
      svg += `<text x="${x + barW / 2}" y="${y(v) - 4}" text-anchor="middle">${v.toFixed(1)}</text>\n`;
    });
    svg += `<text x="${left + gi * groupW + groupW / 2}" y="${top + plotH + 20}" text-anchor="middle" font-size="10">${esc(p)}</text>\n`;
  });
  svg += `<line x1="${left}" x2="${W - 20}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>\n`;
  approaches.forEach(([, label, color], i) => {
    const lx = left + 10 + i * 200;
    svg += `<rect x="${lx}" y="${H - 24}" width="12" height="12" fill="${color}"/><text x="${lx + 18}" y="${H - 14}">${esc(label)}</text>\n`;
  });
  return svg + '</svg>\n';
}

function niceStep(x) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(x, 1e-9))));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}
