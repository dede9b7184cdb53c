/**
 * A plan split for threads: a small `PlanSummary` (everything but the blocks: what the
 * supervisor and the commit need) and a `PlanTable` holding every planned block as columns in
 * one SharedArrayBuffer. The table crosses threads without a copy and without walking a million
 * objects on the host's thread; each actor reads the blocks it needs from it.
 */
import type { CompactionPlan, PlanIteration, PlannedBlock } from './types.js';

export type PlanSummary = Omit<CompactionPlan, 'iterations'> & {
  iterations: (Omit<PlanIteration, 'blocks'> & { blockCount: number })[];
};

export interface PlanTable {
  /** `COLUMNS.length` Float64 columns of `count` values each. */
  buffer: SharedArrayBuffer;
  count: number;
  /** Source object keys; `keyIndex` points here. */
  keys: string[];
  /** Source object ids, parallel to `keys`. */
  objectIds: number[];
  /** First block of each iteration, plus the total at the end (length iterations + 1). */
  iterationStarts: number[];
}

const COLUMNS = ['keyIndex', 'position', 'size', 'streamId', 'startOffset', 'endOffset', 'recordCount', 'destKind', 'destIndex', 'destOffset'] as const;
type Column = (typeof COLUMNS)[number];
const SSO = 0;
const SO = 1;

export function summarizePlan(plan: CompactionPlan): PlanSummary {
  const { iterations, ...rest } = plan;
  return { ...rest, iterations: iterations.map(({ blocks, ...it }) => ({ ...it, blockCount: blocks.length })) };
}

/** Every block of the plan in iteration order, as columns (safe integers fit a Float64 exactly). */
export function encodePlanTable(plan: CompactionPlan): PlanTable {
  const count = plan.iterations.reduce((n, it) => n + it.blocks.length, 0);
  const buffer = new SharedArrayBuffer(Math.max(8, COLUMNS.length * count * 8));
  const cols = columnsOf(buffer, count);
  const keyIndex = new Map<string, number>();
  const keys: string[] = [];
  const objectIds: number[] = [];
  const iterationStarts: number[] = [];
  let i = 0;
  for (const it of plan.iterations) {
    iterationStarts.push(i);
    for (const b of it.blocks) {
      let k = keyIndex.get(b.key);
      if (k === undefined) {
        k = keys.length;
        keyIndex.set(b.key, k);
        keys.push(b.key);
        objectIds.push(b.objectId);
      }
      cols.keyIndex[i] = k;
      cols.position[i] = b.position;
      cols.size[i] = b.size;
      cols.streamId[i] = b.streamId;
      cols.startOffset[i] = b.startOffset;
      cols.endOffset[i] = b.endOffset;
      cols.recordCount[i] = b.recordCount;
      cols.destKind[i] = b.dest.kind === 'sso' ? SSO : SO;
      cols.destIndex[i] = b.dest.kind === 'so' ? b.dest.index : -1;
      cols.destOffset[i] = b.dest.offset;
      i++;
    }
  }
  iterationStarts.push(i);
  return { buffer, count, keys, objectIds, iterationStarts };
}

function columnsOf(buffer: SharedArrayBuffer, count: number): Record<Column, Float64Array> {
  const out = {} as Record<Column, Float64Array>;
  COLUMNS.forEach((c, n) => (out[c] = new Float64Array(buffer, n * count * 8, count)));
  return out;
}

/**
 * A Float64Array element is a heap number; stored in an object's field it makes that field a
 * boxed double in every object of its shape (~16 B more per field, for tens of thousands of
 * segments). Small integers, the usual case, become Smis; larger values stay doubles.
 */
function int(n: number): number {
  return n <= 0x3fffffff && n >= -0x40000000 ? n | 0 : n;
}

/** Read access to a table's blocks, on any thread. */
export class PlanBlocks {
  private readonly cols: Record<Column, Float64Array>;
  constructor(readonly table: PlanTable) {
    this.cols = columnsOf(table.buffer, table.count);
  }

  get count(): number {
    return this.table.count;
  }

  /** Block indexes [start, end) of iteration `i`. */
  iterationRange(i: number): [number, number] {
    return [this.table.iterationStarts[i]!, this.table.iterationStarts[i + 1]!];
  }

  key(i: number): string {
    return this.table.keys[int(this.cols.keyIndex[i]!)]!;
  }
  position(i: number): number {
    return int(this.cols.position[i]!);
  }
  size(i: number): number {
    return int(this.cols.size[i]!);
  }
  isSso(i: number): boolean {
    return this.cols.destKind[i] === SSO;
  }
  /** The stream object's index, or -1 for the SSO. */
  destIndex(i: number): number {
    return int(this.cols.destIndex[i]!);
  }
  destOffset(i: number): number {
    return int(this.cols.destOffset[i]!);
  }

  block(i: number): PlannedBlock {
    const c = this.cols;
    const k = c.keyIndex[i]!;
    return {
      objectId: this.table.objectIds[k]!,
      key: this.table.keys[k]!,
      position: c.position[i]!,
      size: c.size[i]!,
      streamId: c.streamId[i]!,
      startOffset: c.startOffset[i]!,
      endOffset: c.endOffset[i]!,
      recordCount: c.recordCount[i]!,
      dest: c.destKind[i] === SSO ? { kind: 'sso', offset: c.destOffset[i]! } : { kind: 'so', index: c.destIndex[i]!, offset: c.destOffset[i]! },
    };
  }

  /** The block's index entry in its source object (position = position in the source). */
  sourceEntry(i: number): { streamId: number; startOffset: number; endOffset: number; recordCount: number; position: number; size: number } {
    const c = this.cols;
    return { streamId: int(c.streamId[i]!), startOffset: int(c.startOffset[i]!), endOffset: int(c.endOffset[i]!), recordCount: int(c.recordCount[i]!), position: int(c.position[i]!), size: int(c.size[i]!) };
  }

  /** The index entry this block becomes in its output (position = offset in the output). */
  outputEntry(i: number): { streamId: number; startOffset: number; endOffset: number; recordCount: number; position: number; size: number } {
    const c = this.cols;
    return { streamId: int(c.streamId[i]!), startOffset: int(c.startOffset[i]!), endOffset: int(c.endOffset[i]!), recordCount: int(c.recordCount[i]!), position: int(c.destOffset[i]!), size: int(c.size[i]!) };
  }
}
