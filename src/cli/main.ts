#!/usr/bin/env node
/**
 * s3-stream-compactor command line. Every failure ends with one line on stderr
 * (`error: ...`) and a non-zero exit code: 2 for usage errors, 1 for runtime failures,
 * 3 when verify finds problems. `--log-level debug` adds the stack trace.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import type { CliContext } from './context.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, describeFailure } from './errors.js';
import { writeErr } from './output.js';
import { buildProgram } from './program.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

function debugRequested(argv: readonly string[]): boolean {
  const i = argv.findIndex((a) => a === '--log-level' || a.startsWith('--log-level='));
  const v = i < 0 ? process.env.S3SC_LOG_LEVEL : argv[i]!.includes('=') ? argv[i]!.split('=')[1] : argv[i + 1];
  return v === 'debug' || v === 'trace';
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  let ctx: CliContext | undefined;
  let exitCode = EXIT_OK;
  const program = buildProgram({
    onContext: (c) => (ctx = c),
    onExit: (code) => (exitCode = code),
  });
  program.exitOverride();
  program.configureOutput({
    // commander's own errors (unknown command/option, missing argument) as one line
    outputError: (str, write) => write(`${str.replace(/\s*\n\s*(?=\S)/g, ' ').trimEnd()}\n`),
  });
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, `help <command>` exit 0; a parse error (already printed by commander, one line) or
      // no command at all (help on stderr) is a usage error.
      exitCode = err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    } else {
      const endpoint = ctx?.globals.endpoint;
      const { message, exitCode: code } = describeFailure(err, endpoint !== undefined ? { endpoint } : {});
      exitCode = code;
      await writeErr(`error: ${message}`);
      if (debugRequested(argv)) {
        let e: unknown = err;
        for (let depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
          await writeErr(`${depth > 0 ? 'caused by: ' : ''}${e.stack ?? e.message}`);
        }
      }
    }
  } finally {
    await ctx?.close({ failed: exitCode !== EXIT_OK });
  }
  return exitCode;
}

/** True when this file is the program (node dist/cli/main.js, or npm's bin symlink to it). */
function invokedDirectly(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  return real(arg) === real(fileURLToPath(import.meta.url));
}

if (invokedDirectly()) {
  process.stdout.on('error', () => {});
  main().then(
    (code) => {
      process.exitCode = code;
      // Nothing should keep the process alive now; if something does, do not hang.
      setTimeout(() => process.exit(code), 2_000).unref();
    },
    (err: unknown) => {
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(EXIT_FAILURE);
    },
  );
}
