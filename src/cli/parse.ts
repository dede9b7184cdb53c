/**
 * Parsers for CLI option values. Each throws UsageError naming the option and the expected form.
 * Durations are the `ms` package's. Sizes are read here: the packages that parse sizes either
 * lack the IEC units (KiB, MiB) operators type, or read `16mb` as megabits; this parser keeps
 * MiB binary and MB decimal, in any case.
 */
import ms, { type StringValue } from 'ms';
import { UsageError } from './errors.js';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/**
 * Bytes from `16MiB`, `16 MiB`, `1.5GiB`, `512KiB`, `500kb`, `4096` (bytes). Binary units
 * (KiB, MiB, GiB, TiB, and the short K, M, G, T) are powers of 1024; KB, MB, GB, TB are powers of
 * 1000. The result must be a whole number of bytes.
 */
export function parseSize(flag: string, raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(flag, `expected a size such as 16MiB, 512KiB, 1GiB or a number of bytes, got ${JSON.stringify(raw)}`);
  }
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new UsageError(flag, `${JSON.stringify(raw)} is not a whole number of bytes below 2^53`);
  return bytes;
}

/**
 * Milliseconds from `500ms`, `30s`, `5m`, `5min`, `2h`, `1d`, `1.5h` or a plain number of ms, as
 * the `ms` package reads them. Must come to a whole number of milliseconds, 0 or more.
 */
export function parseDuration(flag: string, raw: string): number {
  const v = /^\s*\d/.test(raw) ? ms(raw.trim() as StringValue) : Number.NaN;
  if (!Number.isFinite(v)) {
    throw new UsageError(flag, `expected a duration such as 500ms, 30s, 5m, 2h or a number of milliseconds, got ${JSON.stringify(raw)}`);
  }
  if (!Number.isSafeInteger(v)) throw new UsageError(flag, `${JSON.stringify(raw)} is not a whole number of milliseconds`);
  return v;
}

/** A decimal integer in [min, max]. */
export function parseInteger(flag: string, raw: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\s*-?\d+\s*$/.test(raw)) throw new UsageError(flag, `expected an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new UsageError(flag, `${raw} is not a safe integer`);
  if (n < min) throw new UsageError(flag, `must be at least ${min}, got ${n}`);
  if (n > max) throw new UsageError(flag, `must be at most ${max}, got ${n}`);
  return n;
}

/** `16777216` → `16MiB`; a value that is not a whole number of a binary unit stays in bytes. */
export function formatSize(bytes: number): string {
  for (const [unit, mult] of [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${unit}`;
  }
  return String(bytes);
}

/** `300000` → `5m`; `7200000` → `2h`; otherwise `s` or `ms`. */
export function formatDuration(ms: number): string {
  for (const [unit, mult] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= mult && ms % mult === 0) return `${ms / mult}${unit}`;
  }
  return `${ms}ms`;
}
