/**
 * Where an option's value comes from, strongest first: the flag, its S3SC_* environment
 * variable, the --config file, the default. Commander reads flags and variables itself; the file
 * fills in what neither set, before the command runs.
 */
import { readFileSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { UsageError } from './errors.js';

/** `--memory-limit` → `S3SC_MEMORY_LIMIT`. */
export function envName(long: string): string {
  return `S3SC_${long.replace(/^--(no-)?/, '').replace(/-/g, '_').toUpperCase()}`;
}

/**
 * Gives an option that takes a value its S3SC_* variable (shown by --help as "env: ..."). Must
 * run before the option is added: commander wires the variable up in addOption.
 */
export function withEnv(o: Option): Option {
  if (o.long && o.envVar === undefined && (o.required || o.optional)) o.env(envName(o.long));
  return o;
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-');
}

/** Every long flag of the program and its commands: a key of none of them is a typo. */
function allFlags(program: Command): Set<string> {
  const out = new Set<string>();
  for (const cmd of [program, ...program.commands]) for (const o of cmd.options) if (o.long) out.add(o.long.replace(/^--no-/, '--'));
  return out;
}

/**
 * Applies a JSON config file (`{"bucket": "b", "memory-limit": "64MiB", "watch": true}`; keys are
 * long flag names, camelCase accepted) to what the flags and variables left unset. Keys of other
 * commands are ignored, so one file serves every command; a key of no command is an error.
 */
export function applyConfigFile(program: Command, action: Command, file: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'the file does not exist' : e.code ? `cannot read it (${e.code})` : `not valid JSON (${e.message})`;
    throw new UsageError('--config', `${file}: ${why}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('--config', `${file}: expected a JSON object of options such as {"bucket": "my-bucket", "memory-limit": "64MiB"}`);
  }
  const known = allFlags(program);
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const long = `--${kebab(key)}`;
    if (long === '--config') throw new UsageError('--config', `${file}: a config file cannot name another one`);
    if (!known.has(long)) throw new UsageError('--config', `${file}: unknown option "${key}" (keys are long flag names, such as "memory-limit")`);
    const found = findOption(action, long) ?? findOption(program, long);
    if (!found) continue; // another command's option
    const { cmd, option } = found;
    const attr = option.attributeName();
    const source = cmd.getOptionValueSource(attr);
    if (source !== undefined && source !== 'default' && source !== 'implied') continue;
    cmd.setOptionValueWithSource(attr, configValue(file, key, option, value), 'config');
  }
}

function findOption(cmd: Command, long: string): { cmd: Command; option: Option } | undefined {
  const option = cmd.options.find((o) => o.long === long) ?? cmd.options.find((o) => o.long === long.replace(/^--/, '--no-'));
  return option ? { cmd, option } : undefined;
}

function configValue(file: string, key: string, option: Option, value: unknown): string | boolean {
  if (option.required || option.optional) {
    if (typeof value === 'string' || typeof value === 'number') return String(value);
    throw new UsageError('--config', `${file}: "${key}" must be a string or a number, got ${JSON.stringify(value)}`);
  }
  if (typeof value !== 'boolean') throw new UsageError('--config', `${file}: "${key}" must be true or false, got ${JSON.stringify(value)}`);
  // --path-style and --no-path-style share one attribute: "path-style": false means the latter.
  return value;
}

/** Names where a bad value came from, for the one-line error: `--memory-limit (from S3SC_MEMORY_LIMIT)`. */
export function describeSource(cmd: Command, long: string): string | undefined {
  for (let c: Command | null = cmd; c; c = c.parent) {
    const o = c.options.find((x) => x.long === long);
    if (!o) continue;
    const source = c.getOptionValueSource(o.attributeName());
    if (source === 'env') return `from ${o.envVar}`;
    if (source === 'config') return 'from the --config file';
    return undefined;
  }
  return undefined;
}
