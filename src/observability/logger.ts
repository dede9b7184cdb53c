/**
 * Logger factory: pino, JSON lines by default (one object a line, for log shippers); on a TTY a
 * small built-in formatter prints human lines instead (pino-pretty is deliberately not a
 * dependency). Logs go to stderr by default so stdout stays clean for command output.
 */
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface CreateLoggerOptions {
  /** Default 'info'. */
  level?: LogLevel;
  /** 'json' (one JSON object a line), 'pretty' (human lines) or 'auto' (pretty on a TTY). Default 'auto'. */
  format?: 'json' | 'pretty' | 'auto';
  /** Where lines go. Default process.stderr. */
  destination?: NodeJS.WritableStream;
  /** Bound to every line, e.g. { nodeId }. */
  base?: Record<string, unknown>;
  /** Colour in pretty mode. Default: the destination is a TTY and NO_COLOR is not set. */
  color?: boolean;
}

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
}

export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const dest = opts.destination ?? process.stderr;
  const tty = (dest as { isTTY?: boolean }).isTTY === true;
  const format = opts.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && tty);
  const options = {
    level: opts.level ?? 'info',
    base: opts.base ?? null,
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (!pretty) return pino(options, dest as unknown as DestinationStream);
  const color = opts.color ?? (tty && !process.env.NO_COLOR);
  return pino(options, prettyStream(dest, color));
}

const LEVEL_NAMES: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '\x1b[90m' },
  20: { name: 'DEBUG', color: '\x1b[36m' },
  30: { name: 'INFO ', color: '\x1b[32m' },
  40: { name: 'WARN ', color: '\x1b[33m' },
  50: { name: 'ERROR', color: '\x1b[31m' },
  60: { name: 'FATAL', color: '\x1b[35m' },
};

const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

/** Formats one pino JSON line as `12:00:01.234 INFO  message key=value ...`. */
export function formatLogLine(line: string, color = false): string {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const lvl = LEVEL_NAMES[Number(obj.level)] ?? { name: String(obj.level).toUpperCase().padEnd(5), color: '' };
  const time = typeof obj.time === 'string' ? obj.time.slice(11, 23) : new Date(Number(obj.time ?? Date.now())).toISOString().slice(11, 23);
  const fields: string[] = [];
  let stack: string | undefined;
  for (const [k, v] of Object.entries(obj)) {
    if (SKIP.has(k)) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const e = v as { message?: unknown; code?: unknown; stack?: unknown };
      fields.push(`err=${JSON.stringify(`${e.code ? `${String(e.code)}: ` : ''}${String(e.message ?? '')}`)}`);
      if (typeof e.stack === 'string' && Number(obj.level) <= 20) stack = e.stack;
      continue;
    }
    fields.push(`${k}=${typeof v === 'string' && !/[\s"=]/.test(v) ? v : JSON.stringify(v)}`);
  }
  const name = color ? `${lvl.color}${lvl.name}\x1b[0m` : lvl.name;
  const msg = typeof obj.msg === 'string' ? obj.msg : '';
  return `${time} ${name} ${msg}${fields.length ? ` ${color ? '\x1b[90m' : ''}${fields.join(' ')}${color ? '\x1b[0m' : ''}` : ''}\n${stack ? `${stack}\n` : ''}`;
}

function prettyStream(dest: NodeJS.WritableStream, color: boolean): DestinationStream {
  return {
    write(chunk: string) {
      // pino writes one line per call; be lenient with several.
      for (const line of chunk.split('\n')) {
        if (line.length > 0) dest.write(formatLogLine(line, color));
      }
    },
  };
}

export type { Logger, Level };
