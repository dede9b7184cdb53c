/**
 * Every planner and compactor option as a CLI flag, its default taken from the library
 * (DEFAULT_PLANNER_OPTIONS, COMPACTOR_DEFAULTS) and shown in `--help`.
 */
import { Option, type Command } from 'commander';
import { COMPACTOR_DEFAULTS, DEFAULT_NICE_INCREMENT, resolveCompactorOptions, type CompactorOptions } from '../compactor/options.js';
import type { MetadataStore } from '../metadata/types.js';
import { DEFAULT_PLANNER_OPTIONS } from '../plan/options.js';
import type { PlannerOptions } from '../plan/types.js';
import type { ObjectStorage } from '../storage/types.js';
import { withEnv } from './config.js';
import { FLAG_OF_OPTION, UsageError } from './errors.js';
import { formatDuration, formatSize, parseDuration, parseInteger, parseSize } from './parse.js';

/** `count`: an integer that may be 0 (which turns the feature off). */
type Kind = 'size' | 'duration' | 'int' | 'count';

export interface TunableOption {
  /** The library's option name. */
  key: keyof PlannerOptions | Exclude<keyof typeof COMPACTOR_DEFAULTS, 'gcSafetyAgeMs'> | 'bandwidthLimit' | 'maxOpenReads' | 'niceIncrement';
  flag: string;
  kind: Kind;
  description: string;
  /** Planner options apply to `plan` too; the rest only to `compact`. */
  planner: boolean;
}

export const TUNABLES: readonly TunableOption[] = [
  { key: 'memoryLimit', flag: '--memory-limit', kind: 'size', planner: true, description: 'object bytes held in memory at once, across all actors' },
  { key: 'streamSplitSize', flag: '--stream-split-size', kind: 'size', planner: true, description: "a stream's contiguous run larger than this becomes a stream object" },
  { key: 'maxObjectsPerRun', flag: '--max-objects-per-run', kind: 'int', planner: true, description: 'SSOs considered per run, newest first' },
  { key: 'forceSplitAfterMs', flag: '--force-split-after', kind: 'duration', planner: true, description: 'an SSO older than this is split into stream objects' },
  { key: 'maxStreamObjectsPerCommit', flag: '--max-stream-objects-per-commit', kind: 'int', planner: true, description: 'stream objects per commit' },
  { key: 'maxStreamsPerStreamSetObject', flag: '--max-streams-per-sso', kind: 'int', planner: true, description: 'streams in the new SSO' },
  { key: 'partSize', flag: '--part-size', kind: 'size', planner: true, description: 'multipart part size (at least --min-part-size)' },
  { key: 'minPartSize', flag: '--min-part-size', kind: 'size', planner: true, description: "smallest allowed part size (S3's minimum; lower only for stores that allow it)" },
  { key: 'interval', flag: '--interval', kind: 'duration', planner: false, description: 'time between runs with --watch' },
  { key: 'soonInterval', flag: '--soon-interval', kind: 'duration', planner: false, description: 'delay before the next run when objects were deferred (--watch)' },
  { key: 'threads', flag: '--threads', kind: 'int', planner: false, description: 'worker threads (>= 1; the planner, then the pipeline, run on the first)' },
  { key: 'maxIterationAttempts', flag: '--max-iteration-attempts', kind: 'int', planner: false, description: 'attempts of one iteration on retryable failures' },
  { key: 'retryBaseDelayMs', flag: '--retry-base-delay', kind: 'duration', planner: false, description: 'base backoff between iteration attempts' },
  { key: 'retryMaxDelayMs', flag: '--retry-max-delay', kind: 'duration', planner: false, description: 'cap of the backoff between iteration attempts' },
  { key: 'readsInFlight', flag: '--reads-in-flight', kind: 'int', planner: false, description: 'range GETs in flight per reader' },
  { key: 'maxOpenReads', flag: '--max-open-reads', kind: 'count', planner: false, description: 'most GETs kept open across iterations, one per source, 256 KiB each of --memory-limit; the plan opens as many as save GETs (default and most: three quarters of it, at most 256)' },
  { key: 'partsInFlight', flag: '--parts-in-flight', kind: 'int', planner: false, description: 'part uploads in flight per uploader' },
  { key: 'maxGetSize', flag: '--max-get-size', kind: 'size', planner: false, description: 'largest coalesced range GET' },
  { key: 'indexReadConcurrency', flag: '--index-read-concurrency', kind: 'int', planner: false, description: 'index reads in flight while planning' },
  { key: 'heartbeatTimeoutMs', flag: '--heartbeat-timeout', kind: 'duration', planner: false, description: 'an actor silent this long is replaced' },
  { key: 'iterationTimeoutMs', flag: '--iteration-timeout', kind: 'duration', planner: false, description: 'deadline of one iteration attempt' },
  { key: 'bandwidthLimit', flag: '--bandwidth-limit', kind: 'size', planner: false, description: "bytes per second for all of a run's S3 reads and writes (e.g. 50MiB); default: no limit" },
  { key: 'cancelTimeoutMs', flag: '--cancel-timeout', kind: 'duration', planner: false, description: 'deadline for an actor to acknowledge a cancel' },
  { key: 'niceIncrement', flag: '--nice-increment', kind: 'count', planner: false, description: "how much lower than the process's the worker threads' CPU priority is (0-19; 0: the same)" },
];

const DEFAULTS: Record<string, number> = { ...DEFAULT_PLANNER_OPTIONS, ...COMPACTOR_DEFAULTS, niceIncrement: DEFAULT_NICE_INCREMENT };

for (const t of TUNABLES) FLAG_OF_OPTION.set(t.key, t.flag);
FLAG_OF_OPTION.set('gcSafetyAgeMs', '--safety-age');
FLAG_OF_OPTION.set('nodeId', '--node-id');
FLAG_OF_OPTION.set('bucket', '--bucket');
FLAG_OF_OPTION.set('namespace', '--namespace');
FLAG_OF_OPTION.set('endpoint', '--endpoint');
FLAG_OF_OPTION.set('region', '--region');
FLAG_OF_OPTION.set('path', '--metadata');
FLAG_OF_OPTION.set('graceMs', '--grace-period');
FLAG_OF_OPTION.set('requestTimeoutMs', '--request-timeout');
FLAG_OF_OPTION.set('maxAttempts', '--max-attempts');

export function formatDefault(kind: Kind, v: number): string {
  return kind === 'size' ? formatSize(v) : kind === 'duration' ? formatDuration(v) : String(v);
}

const PLACEHOLDER: Record<Kind, string> = { size: '<size>', duration: '<duration>', int: '<n>', count: '<n>' };

/** camelCase attribute commander stores a flag under. */
function attr(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function addTunableOptions(cmd: Command, which: 'planner' | 'all'): Command {
  for (const t of TUNABLES) {
    if (which === 'planner' && !t.planner) continue;
    const dflt = DEFAULTS[t.key];
    const option = new Option(`${t.flag} ${PLACEHOLDER[t.kind]}`, t.description);
    if (dflt !== undefined) option.default(formatDefault(t.kind, dflt), formatDefault(t.kind, dflt));
    cmd.addOption(withEnv(option.helpGroup(t.planner ? 'Planner options:' : 'Compactor options:')));
  }
  return cmd;
}

export function parseValue(flag: string, kind: Kind, raw: string): number {
  if (kind === 'count') return parseInteger(flag, raw, 0);
  const v = kind === 'size' ? parseSize(flag, raw) : kind === 'duration' ? parseDuration(flag, raw) : parseInteger(flag, raw, 1);
  if (v <= 0) throw new UsageError(flag, `must be greater than 0, got ${JSON.stringify(raw)}`);
  return v;
}

/** Parses the tunables present on `opts` (commander's values) into library options. */
export function parseTunables(opts: Record<string, unknown>): Partial<CompactorOptions> {
  const out: Record<string, number> = {};
  for (const t of TUNABLES) {
    const raw = opts[attr(t.flag)];
    if (raw === undefined) continue;
    out[t.key] = parseValue(t.flag, t.kind, String(raw));
  }
  const partSize = out.partSize ?? DEFAULT_PLANNER_OPTIONS.partSize;
  const minPartSize = out.minPartSize ?? DEFAULT_PLANNER_OPTIONS.minPartSize;
  if (partSize < minPartSize) {
    throw new UsageError(
      '--part-size',
      `must be at least ${formatSize(minPartSize)} (${minPartSize === DEFAULT_PLANNER_OPTIONS.minPartSize ? 'S3 refuses smaller multipart parts' : '--min-part-size'}), got ${formatSize(partSize)}`,
    );
  }
  // Everything else the library checks (bandwidth limit >= 64 KiB/s, part size <= 5 GiB, ...), before any I/O:
  // its OptionsError names the option, which the CLI maps to the flag.
  // --min-part-size is the store's own minimum too (the storage is built with it).
  const probeStorage = { getRange() {}, minPartSize: out.minPartSize } as unknown as ObjectStorage;
  const probeMetadata = { commitStreamSetObject() {} } as unknown as MetadataStore;
  resolveCompactorOptions({ ...out, storage: probeStorage, metadata: probeMetadata, nodeId: 0 });
  return out as Partial<CompactorOptions>;
}
