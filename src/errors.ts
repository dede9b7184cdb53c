/**
 * One error hierarchy for the whole library. Every error has a stable `code` that hosts can
 * switch on, says whether retrying the same operation may succeed (`retryable`), and keeps its
 * `cause`. Errors cross worker threads as plain objects (`serializeError`) and are rebuilt with
 * their class on the other side (`deserializeError`), because structured clone drops the class,
 * the code and custom fields of an Error.
 */

import type { CompactorErrorCode, FormatErrorCode, MetadataErrorCode, PlanErrorCode, StorageErrorCode, WorkerErrorCode } from './error-codes.js';

export type * from './error-codes.js';

export interface CompactorErrorOptions {
  cause?: unknown;
  retryable?: boolean;
}

/**
 * Marks our errors with the names of their classes. A second copy of this module (a worker
 * started through another loader, two installs of the package) has other class objects, so a
 * plain `instanceof` would call our own StorageError a foreign error: the brand keeps
 * `instanceof` true across copies.
 */
const BRAND = Symbol.for('s3-stream-compactor.error-classes');

function classNames(proto: object | null): string[] {
  const names: string[] = [];
  for (let p = proto; p && p !== Error.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const name = (p as { constructor?: { name?: string } }).constructor?.name;
    if (name) names.push(name);
  }
  return names;
}

export class CompactorError extends Error {
  readonly code: CompactorErrorCode;
  readonly retryable: boolean;
  override readonly cause?: unknown;

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const names = (value as { [BRAND]?: unknown })[BRAND];
    return Array.isArray(names) && names.includes(this.name);
  }

  constructor(code: CompactorErrorCode, message: string, options: CompactorErrorOptions = {}) {
    super(message);
    Object.defineProperty(this, BRAND, { value: classNames(new.target.prototype) });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    if (options.cause !== undefined) this.cause = options.cause;
  }

  /** Fields beyond name/message/code/retryable/cause that must survive postMessage. */
  protected extra(): Record<string, unknown> {
    return {};
  }

  toJSON(): SerializedError {
    return serializeError(this);
  }
}

/** Malformed object bytes. Names the object key and the byte position of the problem. */
export class FormatError extends CompactorError {
  readonly key: string;
  readonly position: number;
  constructor(code: FormatErrorCode, message: string, key: string | undefined, position: number, options: CompactorErrorOptions = {}) {
    const k = key ?? '<unnamed object>';
    super(code, `${message} (object ${k}, byte ${position})`, { ...options, retryable: false });
    this.key = k;
    this.position = position;
  }
  protected override extra() {
    return { key: this.key, position: this.position };
  }
}

/** A failed object-storage request. `retryable` follows S3 semantics (5xx, SlowDown, resets, timeouts). */
export class StorageError extends CompactorError {
  readonly operation: string;
  readonly key: string | undefined;
  readonly status: number | undefined;
  constructor(
    code: StorageErrorCode,
    message: string,
    details: { operation: string; key?: string; status?: number },
    options: CompactorErrorOptions = {},
  ) {
    super(code, message, options);
    this.operation = details.operation;
    this.key = details.key;
    this.status = details.status;
  }
  protected override extra() {
    return { operation: this.operation, key: this.key, status: this.status };
  }
}

export class MetadataError extends CompactorError {
  constructor(code: MetadataErrorCode, message: string, options: CompactorErrorOptions = {}) {
    super(code, message, options);
  }
}

/** A wrong option value at a public boundary. Names the option and the fix. */
export class OptionsError extends CompactorError {
  readonly option: string;
  constructor(option: string, message: string) {
    super('ERR_INVALID_OPTION', `option "${option}": ${message}`);
    this.option = option;
  }
  protected override extra() {
    return { option: this.option };
  }
}

/** The planner could not produce a plan (overlap, no plan fits the memory limit, coverage hole). */
export class PlanError extends CompactorError {
  /** An option value that would make this plan work (e.g. the smallest memoryLimit), when known. */
  readonly suggest: { option: string; value: number } | undefined;
  constructor(code: PlanErrorCode, message: string, options: CompactorErrorOptions & { suggest?: { option: string; value: number } } = {}) {
    super(code, message, options);
    this.suggest = options.suggest;
  }
  protected override extra() {
    return { suggest: this.suggest };
  }
}

/** The operation was cancelled by its AbortSignal or by a shutdown. */
export class AbortError extends CompactorError {
  constructor(message = 'the operation was aborted', options: CompactorErrorOptions = {}) {
    super('ERR_ABORTED', message, options);
  }
}

/** A wait ran past its deadline. Retryable: the same wait may succeed with a healthy peer. */
export class TimeoutError extends CompactorError {
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number, options: CompactorErrorOptions = {}) {
    super('ERR_TIMEOUT', `${what} did not finish within ${timeoutMs} ms`, { retryable: true, ...options });
    this.timeoutMs = timeoutMs;
  }
  protected override extra() {
    return { timeoutMs: this.timeoutMs };
  }
}

/** A worker thread crashed, exited or stopped answering. Its work is failed, never waited on. */
export class WorkerError extends CompactorError {
  constructor(code: WorkerErrorCode, message: string, options: CompactorErrorOptions = {}) {
    super(code, message, { retryable: true, ...options });
  }
}

/**
 * Garbage collection refused to delete: the metadata does not look like this bucket's and
 * namespace's, or it would delete more than a small share of the namespace. Nothing was deleted.
 */
export class GcRefusedError extends CompactorError {
  constructor(code: 'ERR_GC_METADATA_MISMATCH' | 'ERR_GC_TOO_MANY', message: string) {
    super(code, message);
  }
}

/** The compactor is closed or a run is already in progress. */
export class StateError extends CompactorError {
  constructor(code: 'ERR_CLOSED' | 'ERR_BUSY', message: string) {
    super(code, message);
  }
}

// ---------------------------------------------------------------------------------------------
// Crossing threads

export interface SerializedError {
  __compactorError: true;
  name: string;
  message: string;
  code: string;
  retryable: boolean;
  stack?: string;
  cause?: SerializedError | SerializedPlainError;
  extra: Record<string, unknown>;
}

interface SerializedPlainError {
  __plainError: true;
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export function serializeError(err: unknown): SerializedError {
  const e = toCompactorError(err);
  const out: SerializedError = {
    __compactorError: true,
    name: e.name,
    message: e.message,
    code: e.code,
    retryable: e.retryable,
    extra: (e as unknown as { extra(): Record<string, unknown> }).extra(),
  };
  if (e.stack !== undefined) out.stack = e.stack;
  if (e.cause !== undefined) out.cause = serializeCause(e.cause);
  return out;
}

function serializeCause(cause: unknown): SerializedError | SerializedPlainError {
  if (cause instanceof CompactorError) return serializeError(cause);
  if (cause instanceof Error) {
    const plain: SerializedPlainError = { __plainError: true, name: cause.name, message: cause.message };
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') plain.code = code;
    if (cause.stack !== undefined) plain.stack = cause.stack;
    return plain;
  }
  return { __plainError: true, name: 'Error', message: String(cause) };
}

export function isSerializedError(value: unknown): value is SerializedError {
  return typeof value === 'object' && value !== null && (value as { __compactorError?: unknown }).__compactorError === true;
}

const classes: Record<string, new (...args: never[]) => CompactorError> = {
  CompactorError,
  FormatError,
  StorageError,
  MetadataError,
  OptionsError,
  PlanError,
  AbortError,
  TimeoutError,
  WorkerError,
  StateError,
  GcRefusedError,
};

/** Rebuilds an error sent by `serializeError` with its class, code, retryable, fields and cause. */
export function deserializeError(s: SerializedError): CompactorError {
  const cls = classes[s.name] ?? CompactorError;
  // Build without running the constructor: constructors format messages, the message is final.
  const e = Object.create(cls.prototype) as CompactorError & Record<string, unknown>;
  Object.defineProperty(e, BRAND, { value: classNames(cls.prototype) });
  Object.defineProperty(e, 'message', { value: s.message, writable: true, configurable: true });
  Object.assign(e, { name: s.name, code: s.code, retryable: s.retryable }, s.extra);
  if (s.stack !== undefined) Object.defineProperty(e, 'stack', { value: s.stack, writable: true, configurable: true });
  if (s.cause !== undefined) Object.defineProperty(e, 'cause', { value: deserializeCause(s.cause), writable: true, configurable: true });
  return e;
}

function deserializeCause(c: SerializedError | SerializedPlainError): Error {
  if ('__compactorError' in c) return deserializeError(c);
  const e = new Error(c.message);
  e.name = c.name;
  if (c.code !== undefined) (e as Error & { code?: string }).code = c.code;
  if (c.stack !== undefined) e.stack = c.stack;
  return e;
}

/** Wraps anything thrown into a CompactorError, keeping the original as `cause`. */
export function toCompactorError(err: unknown): CompactorError {
  if (err instanceof CompactorError) return err;
  if (isSerializedError(err)) return deserializeError(err);
  if (err instanceof Error && err.name === 'AbortError') return new AbortError(err.message, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new CompactorError('ERR_INTERNAL', message, { cause: err });
}
