import { OptionsError } from '../errors.js';

/** Boundary checks that name the option, so a wrong value says what to fix. */
export function checkNonNegativeInt(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new OptionsError(option, `must be a non-negative safe integer, got ${describe(value)}`);
  }
  return value;
}

export function checkPositiveInt(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new OptionsError(option, `must be a positive safe integer, got ${describe(value)}`);
  }
  return value;
}

export function checkNonEmptyString(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new OptionsError(option, `must be a non-empty string, got ${describe(value)}`);
  }
  return value;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return typeof value;
}
