/**
 * Logger factory: pino, JSON lines by default (one object a line, for log shippers); on a TTY,
 * human lines formatted by pino-pretty. Logs go to stderr by default so stdout stays clean for
 * command output. Formatting is synchronous (pino-pretty's prettyFactory, not its transport): a
 * line is on the terminal before the next progress-bar frame, and before the process exits.
 */
import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where log lines go: a stream, or anything with a synchronous `write(line)`. */
export interface LogSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface CreateLoggerOptions {
  /** Default 'info'. */
  level?: LogLevel;
  /** 'json' (one JSON object a line), 'pretty' (human lines) or 'auto' (pretty on a TTY). Default 'auto'. */
  format?: 'json' | 'pretty' | 'auto';
  /** Where lines go. Default process.stderr. */
  destination?: LogSink;
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
  const tty = dest.isTTY === true;
  const format = opts.format ?? 'auto';
  const level = opts.level ?? 'info';
  const options = { level, base: opts.base ?? null, timestamp: pino.stdTimeFunctions.isoTime };
  if (!(format === 'pretty' || (format === 'auto' && tty))) return pino(options, dest as unknown as DestinationStream);
  const pretty = prettyFactory({
    colorize: opts.color ?? (tty && !process.env.NO_COLOR),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    singleLine: true,
    // An error on one line (code: message); its stack only when debugging.
    errorLikeObjectKeys: [],
    customPrettifiers: {
      err: (v: unknown) => {
        const e = (v ?? {}) as { message?: unknown; code?: unknown; stack?: unknown };
        const line = `${e.code ? `${String(e.code)}: ` : ''}${String(e.message ?? '')}`;
        return (level === 'debug' || level === 'trace') && typeof e.stack === 'string' ? `${line}\n${e.stack}` : line;
      },
    },
  });
  const sink: DestinationStream = {
    write(chunk: string) {
      // pino writes one line per call; be lenient with several.
      for (const line of chunk.split('\n')) if (line.length > 0) dest.write(pretty(line));
    },
  };
  return pino(options, sink);
}

export type { Logger, Level };
