/** How the CLI fails: one line on stderr and an exit code, never a stack trace (unless debug). */
import { CompactorError, OptionsError, StorageError } from '../errors.js';
import { roundUpSize } from '../util/units.js';

export const EXIT_OK = 0;
/** A runtime failure: storage, metadata, a failed run. */
export const EXIT_FAILURE = 1;
/** A usage error: unknown command or option, a wrong option value. Nothing was done. */
export const EXIT_USAGE = 2;
/** `verify` ran and found problems (listed in its report). */
export const EXIT_PROBLEMS = 3;

/** A wrong option value or a wrong invocation, found before anything was done. */
export class UsageError extends Error {
  /** `flag` names the option (`--part-size`) or the argument; the message says what is expected. */
  constructor(
    readonly flag: string | undefined,
    message: string,
  ) {
    super(flag ? `option "${flag}": ${message}` : message);
    this.name = 'UsageError';
  }
}

/** A runtime failure the CLI diagnosed itself (e.g. the endpoint does not answer). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = EXIT_FAILURE,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** Maps the library's option names to the CLI's flags (filled from the option table). */
export const FLAG_OF_OPTION = new Map<string, string>();

/**
 * A library message in the CLI's words: its camelCase option names (memoryLimit) become the
 * flags a user types (--memory-limit).
 */
export function asFlags(message: string): string {
  let out = message;
  for (const [option, flag] of FLAG_OF_OPTION) {
    if (/[A-Z]/.test(option)) out = out.replace(new RegExp(`\\b${option}\\b`, 'g'), flag);
  }
  return out;
}

/** Collapses a multi-line message to one line. */
export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').trim();
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT']);

function rootCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 8; depth++) {
    const o = e as { code?: unknown; cause?: unknown; errors?: unknown };
    if (typeof o.code === 'string' && UNREACHABLE.has(o.code)) return o.code;
    // AggregateError from happy-eyeballs connects
    if (Array.isArray(o.errors)) {
      for (const inner of o.errors) {
        const c = rootCode(inner);
        if (c) return c;
      }
    }
    e = o.cause;
  }
  return undefined;
}

/** The one line (without "error: ") and exit code for anything thrown. */
export function describeFailure(err: unknown, ctx: { endpoint?: string } = {}): { message: string; exitCode: number } {
  if (err instanceof UsageError) return { message: oneLine(err.message), exitCode: EXIT_USAGE };
  if (err instanceof CliError) return { message: oneLine(err.message), exitCode: err.exitCode };
  if (err instanceof OptionsError) {
    const flag = FLAG_OF_OPTION.get(err.option);
    const msg = flag ? err.message.replace(`option "${err.option}"`, `option "${flag}"`) : err.message;
    return { message: oneLine(msg), exitCode: EXIT_USAGE };
  }
  if (err instanceof StorageError && err.code === 'ERR_STORAGE_UNAVAILABLE') {
    const code = rootCode(err);
    if (code) return { message: unreachableMessage(ctx.endpoint, code, err), exitCode: EXIT_FAILURE };
  }
  if (err instanceof CompactorError) {
    const suggest = (err as { suggest?: { option: string; value: number } }).suggest;
    const flag = suggest && FLAG_OF_OPTION.get(suggest.option);
    const hint = suggest && flag ? `; ${flag} ${roundUpSize(suggest.value)} would work` : '';
    return { message: oneLine(`${asFlags(err.message)}${hint} [${err.code}]`), exitCode: EXIT_FAILURE };
  }
  const code = rootCode(err);
  if (code) return { message: unreachableMessage(ctx.endpoint, code, err), exitCode: EXIT_FAILURE };
  if (err instanceof Error) return { message: oneLine(err.message || err.name), exitCode: EXIT_FAILURE };
  return { message: oneLine(String(err)), exitCode: EXIT_FAILURE };
}

export function unreachableMessage(endpoint: string | undefined, code: string, err?: unknown): string {
  const where = endpoint ?? 'the default AWS S3 endpoint';
  const detail =
    code === 'ETIMEDOUT'
      ? 'timed out'
      : code === 'ECONNREFUSED'
        ? 'connection refused (ECONNREFUSED)'
        : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? `host not found (${code})`
          : code;
  void err;
  return `cannot reach S3 endpoint ${where}: ${detail} (is it running? check --endpoint)`;
}
