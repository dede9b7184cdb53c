/**
 * Internal big-endian readers and validators shared by the encoder and the decoders. Every
 * decoder failure goes through `fail` so it is always a FormatError naming key and position.
 */
import { FormatError, type FormatErrorCode } from '../errors.js';
import { INT32_MAX } from './constants.js';

export function fail(code: FormatErrorCode, message: string, key: string | undefined, position: number): never {
  throw new FormatError(code, message, key, position);
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Reads a signed int64 that must be a non-negative safe integer. Read as BigInt first: going
 * through a double would silently round values past 2^53 instead of rejecting them.
 */
export function readSafeInt64(
  view: DataView,
  at: number,
  field: string,
  key: string | undefined,
  position: number,
): number {
  const v = view.getBigInt64(at);
  if (v < 0n || v > MAX_SAFE) fail('ERR_FORMAT_UNSAFE_INTEGER', `${field} ${v} is not a non-negative safe integer`, key, position);
  return Number(v);
}

/** Reads a signed int32 that must be non-negative (counts and lengths). */
export function readNonNegativeInt32(
  view: DataView,
  at: number,
  field: string,
  key: string | undefined,
  position: number,
): number {
  const v = view.getInt32(at);
  if (v < 0) fail('ERR_FORMAT_LENGTH_MISMATCH', `${field} ${v} is negative`, key, position);
  return v;
}

export function writeInt64(view: DataView, at: number, value: number): void {
  view.setBigInt64(at, BigInt(value));
}

export function isSafeNonNegative(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function isInt32NonNegative(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= INT32_MAX;
}

/** Encoder-side input check: the bytes have not been written yet, so position is the field's target. */
export function invalid(message: string, position = 0): never {
  throw new FormatError('ERR_FORMAT_INVALID_INPUT', message, undefined, position);
}
