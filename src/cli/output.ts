/** stdout for results (text or --json), stderr for diagnostics; writes that finish before exit. */
import type { LogSink } from '../observability/logger.js';

/** The command's terminal (see progress.ts): stderr lines go above a progress bar while one shows. */
let errSink: LogSink | undefined;

export function useErrSink(sink: LogSink | undefined): void {
  errSink = sink;
}

export function writeOut(text: string): Promise<void> {
  return write(process.stdout, text.endsWith('\n') ? text : `${text}\n`);
}

export function writeErr(text: string): Promise<void> {
  const line = text.endsWith('\n') ? text : `${text}\n`;
  if (errSink) {
    errSink.write(line);
    return Promise.resolve();
  }
  return write(process.stderr, line);
}

export function writeJson(value: unknown): Promise<void> {
  return writeOut(JSON.stringify(value, null, 2));
}

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    // A closed pipe (`| head`) is not our failure: resolve either way.
    stream.write(text, () => resolve());
  });
}

/** Left-aligned columns. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}
