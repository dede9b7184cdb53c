import { decodeObject } from '../../format/decode.js';
import { readStream } from '../../ingest/read-stream.js';
import { forEachConcurrent } from '../../util/async.js';
import type { StreamRange } from '../../metadata/types.js';
import type { CliContext } from '../context.js';
import { EXIT_OK, EXIT_PROBLEMS, describeFailure } from '../errors.js';
import { writeJson, writeOut } from '../output.js';
import { humanBytes } from '../../util/units.js';
import { parseInteger } from '../parse.js';
import { indexProblems } from '../../plan/index-holds.js';
import { formatQuarantined } from './quarantine.js';

export interface VerifyProblem {
  kind: 'stream' | 'object';
  id: number;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  /** `gaps`: places where a stream's offsets skip ahead (sparse offsets, legal). */
  streams: { checked: number; records: number; offsets: number; gaps: number };
  objects: { checked: number; streamSetObjects: number; streamObjects: number; bytes: number };
  problems: VerifyProblem[];
}

/**
 * Every stream (not deleted) reads back in offset order up to its end offset (gaps are sparse
 * offsets, counted, not problems);
 * every live object exists with the size metadata says, decodes whole, and its index covers the
 * ranges metadata gives it.
 */
export async function verifyCommand(ctx: CliContext, flags: { concurrency: string }): Promise<number> {
  const concurrency = parseInteger('--concurrency', flags.concurrency, 1, 256);
  const metadata = await ctx.metadata({ mustExist: true, readOnly: true });
  const storage = await ctx.storage();
  const problems: VerifyProblem[] = [];
  const report: VerifyReport = {
    ok: true,
    streams: { checked: 0, records: 0, offsets: 0, gaps: 0 },
    objects: { checked: 0, streamSetObjects: 0, streamObjects: 0, bytes: 0 },
    problems,
  };
  const endpoint = ctx.globals.endpoint !== undefined ? { endpoint: ctx.globals.endpoint } : {};
  const fail = (kind: VerifyProblem['kind'], id: number, message: string) => {
    problems.push({ kind, id, message });
    ctx.logger.warn({ kind, id }, message);
  };

  const streams = ((await metadata.listStreams?.()) ?? []).filter((s) => s.state !== 'deleted');
  const live = (await metadata.listAllLiveObjects?.()) ?? { streamSetObjects: [], streamObjects: [] };
  const liveCount = live.streamSetObjects.length + live.streamObjects.length;
  const bar = ctx.terminal.progress({ label: 'verifying', unit: 'items' });
  let done = 0;
  const tick = () => bar.update(++done, `${report.streams.checked}/${streams.length} streams, ${report.objects.checked}/${liveCount} objects`);
  bar.start(streams.length + liveCount, `0/${streams.length} streams`);
  try {
    await checkAll();
  } finally {
    bar.stop();
  }
  /** Streams first (each read back whole), then every live object. */
  async function checkAll(): Promise<void> {
    await forEachConcurrent(streams, concurrency, async (s) => {
      report.streams.checked++;
      let next = s.startOffset;
      let first = true;
      try {
        for await (const r of readStream({ storage, metadata, streamId: s.streamId, startOffset: s.startOffset, endOffset: s.endOffset })) {
          // Offsets may be sparse (compacted topics): a gap between records is legal, going back is not.
          if (!first && r.baseOffset < next) {
            fail('stream', s.streamId, `stream ${s.streamId}: read a record at [${r.baseOffset}, ${r.baseOffset + r.count}) after offset ${next}: records overlap or go back`);
            return;
          }
          if (!first && r.baseOffset > next) report.streams.gaps++;
          first = false;
          report.streams.records++;
          next = r.baseOffset + r.count;
        }
        if (next < s.endOffset) fail('stream', s.streamId, `stream ${s.streamId}: reads end at offset ${next}, metadata says ${s.endOffset} (offsets ${next}..${s.endOffset - 1} missing)`);
        else report.streams.offsets += s.endOffset - s.startOffset;
      } catch (err) {
        fail('stream', s.streamId, `stream ${s.streamId}: read failed: ${describeFailure(err, endpoint).message}`);
      } finally {
        tick();
      }
    });

    const objects: { objectId: number; objectSize: number; kind: 'sso' | 'so'; ranges: StreamRange[] }[] = [
      ...live.streamSetObjects.map((o) => ({ objectId: o.objectId, objectSize: o.objectSize, kind: 'sso' as const, ranges: o.ranges })),
      ...live.streamObjects.map((o) => ({
        objectId: o.objectId,
        objectSize: o.objectSize,
        kind: 'so' as const,
        ranges: [{ streamId: o.streamId, startOffset: o.startOffset, endOffset: o.endOffset }],
      })),
    ];
    await forEachConcurrent(objects, concurrency, async (o) => {
      const key = storage.keyOf(o.objectId);
      const what = `${o.kind === 'sso' ? 'stream set object' : 'stream object'} ${o.objectId} (${key})`;
      report.objects.checked++;
      if (o.kind === 'sso') report.objects.streamSetObjects++;
      else report.objects.streamObjects++;
      try {
        const head = await storage.headObject(key);
        if (!head) return fail('object', o.objectId, `${what}: missing from the bucket`);
        if (head.size !== o.objectSize) return fail('object', o.objectId, `${what}: ${head.size} bytes in storage, metadata says ${o.objectSize}`);
        const bytes = await storage.getObject(key);
        report.objects.bytes += bytes.byteLength;
        const { entries } = decodeObject(bytes, key);
        for (const problem of indexProblems(entries, o.ranges)) fail('object', o.objectId, `${what}: ${problem}`);
        if (o.kind === 'so' && entries.some((e) => e.streamId !== o.ranges[0]!.streamId)) {
          fail('object', o.objectId, `${what}: holds data of streams other than ${o.ranges[0]!.streamId}`);
        }
      } catch (err) {
        fail('object', o.objectId, `${what}: ${describeFailure(err, endpoint).message}`);
      } finally {
        tick();
      }
    });
  }

  problems.sort((a, b) => (a.kind === b.kind ? a.id - b.id : a.kind === 'stream' ? -1 : 1));
  report.ok = problems.length === 0;
  // Quarantined objects are known problems, already reported; listed so they are never forgotten.
  const quarantined = await metadata.listQuarantined();
  if (ctx.globals.json) await writeJson({ ...report, quarantined });
  else {
    const out = [
      `verify: ${report.streams.checked} stream(s), ${report.streams.records} record(s); ` +
        `${report.objects.checked} live object(s) (${report.objects.streamSetObjects} SSO, ${report.objects.streamObjects} SO), ${humanBytes(report.objects.bytes)}: ` +
        (report.ok ? 'OK' : `${problems.length} problem(s)`),
      ...problems.map((p) => `  ${p.message}`),
      ...formatQuarantined(quarantined, (id) => storage.keyOf(id)),
    ];
    await writeOut(out.join('\n'));
  }
  return report.ok ? EXIT_OK : EXIT_PROBLEMS;
}
