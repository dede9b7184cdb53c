import { decodeObject } from '../../format/decode.js';
import { readStream } from '../../ingest/read-stream.js';
import { forEachConcurrent } from '../../util/async.js';
import type { StreamMetadata, StreamRange } from '../../metadata/types.js';
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
  streams: { checked: number; records: number; offsets: number; gaps: number; readPathChecked: number };
  objects: { checked: number; streamSetObjects: number; streamObjects: number; bytes: number };
  problems: VerifyProblem[];
}

/** Object bytes held at once (one larger object is still read, alone). */
const BYTES_IN_FLIGHT = 256 * 1024 * 1024;
/** Streams also read through the read path (readStream) and compared with the objects' contents. */
const READ_PATH_SAMPLES = 8;

interface LiveObject {
  objectId: number;
  objectSize: number;
  kind: 'sso' | 'so';
  ranges: StreamRange[];
}

/** What one object holds for one of its metadata ranges: the records of that stream, in order. */
interface Source {
  objectId: number;
  startOffset: number;
  endOffset: number;
  /** [baseOffset, count] of each record of the stream that overlaps the range. */
  records: [number, number][] | undefined;
}

/**
 * Every live object exists with the size metadata says, decodes whole, and its index covers the
 * ranges metadata gives it; every stream (not deleted) reads back in offset order up to its end
 * offset, gaps (sparse offsets) counted, not problems.
 *
 * Each object is read once, whole: the streams are checked from what the objects hold, in the
 * order the read path takes them (the objects metadata lists for the stream, by offset). A
 * sample of streams is also read through the read path itself and must agree.
 */
export async function verifyCommand(ctx: CliContext, flags: { concurrency: string }): Promise<number> {
  const concurrency = parseInteger('--concurrency', flags.concurrency, 1, 256);
  const metadata = await ctx.metadata({ mustExist: true, readOnly: true });
  const storage = await ctx.storage();
  const problems: VerifyProblem[] = [];
  const report: VerifyReport = {
    ok: true,
    streams: { checked: 0, records: 0, offsets: 0, gaps: 0, readPathChecked: 0 },
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
  const objects: LiveObject[] = [
    ...live.streamSetObjects.map((o) => ({ objectId: o.objectId, objectSize: o.objectSize, kind: 'sso' as const, ranges: o.ranges })),
    ...live.streamObjects.map((o) => ({
      objectId: o.objectId,
      objectSize: o.objectSize,
      kind: 'so' as const,
      ranges: [{ streamId: o.streamId, startOffset: o.startOffset, endOffset: o.endOffset }],
    })),
  ];
  const sources = new Map<number, Source[]>();
  const bar = ctx.terminal.progress({ label: 'verifying', unit: 'bytes' });
  bar.start(
    objects.reduce((n, o) => n + o.objectSize, 0),
    `0/${objects.length} objects`,
  );
  let bytesDone = 0;
  let held = 0;
  const released: (() => void)[] = [];
  try {
    await forEachConcurrent(objects, concurrency, async (o) => {
      // Bounded memory: wait while others hold the byte budget (an object larger than it runs alone).
      while (held > 0 && held + o.objectSize > BYTES_IN_FLIGHT) await new Promise<void>((r) => released.push(r));
      held += o.objectSize;
      try {
        await checkObject(o);
      } finally {
        held -= o.objectSize;
        bytesDone += o.objectSize;
        bar.update(bytesDone, `${report.objects.checked}/${objects.length} objects`);
        released.splice(0).forEach((r) => r());
      }
    });
    bar.start(streams.length, 'streams');
    for (const [i, s] of streams.entries()) {
      checkStream(s);
      if (i % 256 === 0) bar.update(i + 1);
    }
    await checkReadPath();
  } finally {
    bar.stop();
  }

  async function checkObject(o: LiveObject): Promise<void> {
    const key = storage.keyOf(o.objectId);
    const what = `${o.kind === 'sso' ? 'stream set object' : 'stream object'} ${o.objectId} (${key})`;
    report.objects.checked++;
    if (o.kind === 'sso') report.objects.streamSetObjects++;
    else report.objects.streamObjects++;
    /** Each metadata range of the object, with the object's records of that stream (none: unreadable). */
    const add = (byStream: Map<number, [number, number][]> | undefined) => {
      for (const r of o.ranges) {
        const list = sources.get(r.streamId) ?? [];
        const records = byStream && (byStream.get(r.streamId) ?? []).filter(([base, count]) => base + count > r.startOffset && base < r.endOffset);
        list.push({ objectId: o.objectId, startOffset: r.startOffset, endOffset: r.endOffset, records });
        sources.set(r.streamId, list);
      }
    };
    try {
      const head = await storage.headObject(key);
      if (!head || head.size !== o.objectSize) {
        fail('object', o.objectId, `${what}: ${head ? `${head.size} bytes in storage, metadata says ${o.objectSize}` : 'missing from the bucket'}`);
        return add(undefined);
      }
      const bytes = await storage.getObject(key);
      report.objects.bytes += bytes.byteLength;
      const { entries, records } = decodeObject(bytes, key);
      const found = indexProblems(entries, o.ranges);
      for (const problem of found) fail('object', o.objectId, `${what}: ${problem}`);
      if (o.kind === 'so' && entries.some((e) => e.streamId !== o.ranges[0]!.streamId)) {
        fail('object', o.objectId, `${what}: holds data of streams other than ${o.ranges[0]!.streamId}`);
      }
      // Per stream, the records as the read path would find them in this object.
      const byStream = new Map<number, [number, number][]>();
      for (const r of records) {
        const list = byStream.get(r.streamId) ?? [];
        list.push([r.baseOffset, r.count]);
        byStream.set(r.streamId, list);
      }
      // An index that does not hold a range fails the read path: the object's streams fail here too.
      add(found.length > 0 ? undefined : byStream);
    } catch (err) {
      fail('object', o.objectId, `${what}: ${describeFailure(err, endpoint).message}`);
      add(undefined);
    }
  }

  /** The read path's walk (read-stream.ts) over what the objects hold. */
  function checkStream(s: StreamMetadata): void {
    report.streams.checked++;
    const list = (sources.get(s.streamId) ?? []).sort((a, b) => a.startOffset - b.startOffset || a.endOffset - b.endOffset);
    let next = s.startOffset;
    let first = true;
    for (const src of list) {
      if (src.endOffset <= next || src.startOffset >= s.endOffset) continue;
      if (src.records === undefined) {
        return fail('stream', s.streamId, `stream ${s.streamId}: object ${src.objectId} holding [${src.startOffset}, ${src.endOffset}) cannot be read (see its problem)`);
      }
      for (const [base, count] of src.records) {
        if (base + count <= next || base >= s.endOffset) continue;
        if (!first && base < next) {
          return fail('stream', s.streamId, `stream ${s.streamId}: read a record at [${base}, ${base + count}) after offset ${next}: records overlap or go back`);
        }
        if (!first && base > next) report.streams.gaps++;
        first = false;
        report.streams.records++;
        next = base + count;
      }
    }
    if (next < s.endOffset) fail('stream', s.streamId, `stream ${s.streamId}: reads end at offset ${next}, metadata says ${s.endOffset} (offsets ${next}..${s.endOffset - 1} missing)`);
    else report.streams.offsets += s.endOffset - s.startOffset;
  }

  /** A few streams through readStream itself: the read path must see what the objects hold. */
  async function checkReadPath(): Promise<void> {
    const bad = new Set(problems.filter((p) => p.kind === 'stream').map((p) => p.id));
    const step = Math.max(1, Math.floor(streams.length / READ_PATH_SAMPLES));
    const sample = streams.filter((s, i) => i % step === 0 && !bad.has(s.streamId)).slice(0, READ_PATH_SAMPLES);
    await forEachConcurrent(sample, concurrency, async (s) => {
      report.streams.readPathChecked++;
      try {
        let n = 0;
        for await (const r of readStream({ storage, metadata, streamId: s.streamId })) {
          void r;
          n++;
        }
        const expected = expectedRecords(s);
        if (n !== expected) fail('stream', s.streamId, `stream ${s.streamId}: the read path returns ${n} record(s), its objects hold ${expected}`);
      } catch (err) {
        fail('stream', s.streamId, `stream ${s.streamId}: read failed: ${describeFailure(err, endpoint).message}`);
      }
    });
  }

  function expectedRecords(s: StreamMetadata): number {
    let next = s.startOffset;
    let n = 0;
    for (const src of sources.get(s.streamId) ?? []) {
      if (src.endOffset <= next || src.startOffset >= s.endOffset) continue;
      for (const [base, count] of src.records ?? []) {
        if (base + count <= next || base >= s.endOffset) continue;
        n++;
        next = base + count;
      }
    }
    return n;
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
