/** Human-readable units for reports and logs. */

/** Human size for reports: `512 B`, `1.50 MiB`, `12.3 GiB`, `200 MiB` (binary units, 3 significant digits). */
export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

/** Human duration for reports: `850 ms`, `4.29 s`, `2m05s`, `1h02m`. */
export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A size a user can type, rounded up: `12MiB` for 11.3 MiB, `300KiB` for 299.2 KiB, `512B`. */
export function roundUpSize(n: number): string {
  if (n >= 1024 ** 3) return `${Math.ceil(n / 1024 ** 3)}GiB`;
  if (n >= 1024 ** 2) return `${Math.ceil(n / 1024 ** 2)}MiB`;
  if (n >= 1024) return `${Math.ceil(n / 1024)}KiB`;
  return `${n}B`;
}
