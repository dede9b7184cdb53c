/**
 * The command-line program: global options, commands, and their wiring to a CliContext.
 * Commands load lazily: `--help` and usage errors never load the SDK, SQLite or worker code.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { COMPACTOR_DEFAULTS } from '../compactor/options.js';
import { LOG_LEVELS } from '../observability/logger.js';
import type { IngestSampleFlags } from './commands/ingest-sample.js';
import { CliContext } from './context.js';
import { DEFAULT_LOG_LEVEL, DEFAULT_METADATA_PATH, DEFAULT_NODE_ID, parseGlobals, type RawGlobals } from './globals.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE } from './errors.js';
import { applyConfigFile, describeSource, withEnv } from './config.js';
import { addTunableOptions } from './options.js';
import { UsageError } from './errors.js';
import { formatDuration } from './parse.js';

export interface ProgramHooks {
  /** Receives each command's context once opened (main uses it to report and clean up). */
  onContext(ctx: CliContext): void;
  /** Receives each command's exit code. */
  onExit(code: number): void;
}

const EPILOG = `
Exit codes: ${EXIT_OK} success, ${EXIT_FAILURE} runtime failure (storage, metadata, a failed run), ${EXIT_USAGE} usage error
(unknown command or option, bad value; nothing was done), ${EXIT_PROBLEMS} verify found problems, 130 interrupted (SIGINT), 143 stopped by SIGTERM (compact --watch).
Sizes take binary units (16MiB, 512KiB, 1GiB; KB/MB/GB are powers of 1000; a bare number is bytes).
Durations: 500ms, 30s, 5m, 2h, 1d (a bare number is milliseconds).
Where values come from, strongest first: the flag, its environment variable (env: S3SC_... above), the
--config file (JSON; keys are long flag names: {"bucket": "b", "memory-limit": "64MiB", "watch": true}), the default.
Credentials: the AWS SDK default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...).
Logs (JSON lines, or human lines on a TTY) go to stderr; results go to stdout.`;

/** The version in package.json (two levels up from dist/cli/ and from src/cli/). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(hooks: ProgramHooks): Command {
  const program = new Command('s3-stream-compactor');
  program
    .version(packageVersion(), '-V, --version', 'print the version')
    .description('Compacts S3Stream stream set objects on S3: plan, compact, verify, inspect, garbage-collect.')
    .addOption(new Option('--endpoint-url <url>', 'S3 endpoint URL (or AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL; default: AWS S3 for the region); path-style URLs unless --no-path-style'))

    .addOption(withEnv(new Option('--endpoint <url>', 'alias of --endpoint-url').env('S3SC_ENDPOINT')))
    .addOption(withEnv(new Option('--region <region>', "S3 region (or AWS_REGION, AWS_DEFAULT_REGION, the profile's region in ~/.aws/config; no silent default)").env('S3SC_REGION')))
    .addOption(new Option('--profile <name>', 'AWS profile for credentials and region (or AWS_PROFILE)'))

    .addOption(withEnv(new Option('--bucket <name>', 'bucket holding the objects').env('S3SC_BUCKET')))
    .addOption(withEnv(new Option('--namespace <ns>', 'namespace of object keys').default('DEFAULT').env('S3SC_NAMESPACE')))
    .addOption(withEnv(new Option('--metadata <file|url>', 'SQLite metadata file, or a PostgreSQL database (postgres://user@host:5432/db) shared by many nodes').default(DEFAULT_METADATA_PATH).env('S3SC_METADATA')))
    .addOption(withEnv(new Option('--node-id <id>', 'ingest node whose stream set objects are compacted/written').default(String(DEFAULT_NODE_ID), String(DEFAULT_NODE_ID))))
    .addOption(withEnv(new Option('--create-bucket', 'create the bucket when it does not exist')))
    .addOption(withEnv(new Option('--path-style', 'path-style S3 URLs (default: on with --endpoint, off for AWS)')))
    .addOption(withEnv(new Option('--no-path-style', 'virtual-hosted-style S3 URLs')))
    .addOption(withEnv(new Option('--request-timeout <duration>', 'deadline of one S3 request').default('30s', '30s')))
    .addOption(withEnv(new Option('--max-attempts <n>', 'attempts per S3 request, the first included').default('3', '3')))
    .addOption(withEnv(new Option('--grace-period <duration>', 'how long compacted objects stay in storage before deletion (metadata)').default('5m', '5m')))
    .addOption(withEnv(new Option('--log-level <level>', 'log level (debug also prints stack traces)').choices([...LOG_LEVELS]).default(DEFAULT_LOG_LEVEL)))
    .addOption(withEnv(new Option('--json', 'print results as JSON on stdout')))
    .addOption(withEnv(new Option('--metrics-port <port>', 'serve Prometheus metrics on this port during compact (0 = any free port, printed on stderr)')))
    .addOption(withEnv(new Option('--metrics-host <host>', 'address of the metrics server').default('127.0.0.1')))
    .addOption(withEnv(new Option('--config <file>', 'JSON file of option values (below flags and environment variables)')))
    .addHelpText('afterAll', EPILOG)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showSuggestionAfterError(true);

  const run =
    <A extends unknown[]>(fn: (ctx: CliContext, ...args: A) => Promise<number>) =>
    async (...args: A) => {
      // commander passes (...arguments, options, command)
      const cmd = args[args.length - 1] as Command;
      try {
        const ctx = new CliContext(parseGlobals(cmd.optsWithGlobals() as unknown as RawGlobals));
        hooks.onContext(ctx);
        hooks.onExit(await fn(ctx, ...args));
      } catch (err) {
        // A bad value from a variable or the config file: say which, or the user looks for a flag they never typed.
        const from = err instanceof UsageError && err.flag?.startsWith('--') ? describeSource(cmd, err.flag) : undefined;
        if (from && err instanceof UsageError) throw new UsageError(`${err.flag} (${from})`, err.message.slice(`option "${err.flag}": `.length));
        throw err;
      }
    };

  addTunableOptions(
    program
      .command('compact')
      .description('run one compaction of the node (or, with --watch, one every --interval until SIGINT/SIGTERM)')
      .option('--watch', `keep running: a run every --interval (default ${formatDuration(COMPACTOR_DEFAULTS.interval)})`)
      .option('--no-progress', 'no progress bar (it is shown only on a TTY, never with --json)')
      .option('--adopt-expired-nodes', 'with --watch: also compact one other node whose compactor stopped renewing its lease, under its id (shared PostgreSQL metadata)'),
    'all',
  ).action(run(async (ctx, flags: Record<string, unknown>) => (await import('./commands/compact.js')).compactCommand(ctx, flags)));

  addTunableOptions(
    program.command('plan').description('dry run: read the candidates\' indexes and print the compaction plan (writes nothing)'),
    'planner',
  ).action(run(async (ctx, flags: Record<string, unknown>) => (await import('./commands/plan.js')).planCommand(ctx, flags)));

  program
    .command('inspect')
    .description('show an object: footer, index entries, stream ranges (and records with --records)')
    .argument('<key|file|id>', 'a local object file, an object key in --bucket, or an object id in --namespace')
    .option('--records', 'list every record (decodes the whole object)')
    .action(run(async (ctx, target: string, flags: { records?: boolean }) => (await import('./commands/inspect.js')).inspectCommand(ctx, target, flags)));

  program
    .command('verify')
    .description(`check every stream reads back contiguous and every live object decodes with its metadata size (exit ${EXIT_PROBLEMS} on problems)`)
    .addOption(withEnv(new Option('--concurrency <n>', 'streams/objects checked at once').default('8')))
    .action(run(async (ctx, flags: { concurrency: string }) => (await import('./commands/verify.js')).verifyCommand(ctx, flags)));

  program
    .command('quarantine')
    .description('objects that planning or copying found damaged or inconsistent: list them, or release one after repairing it')
    .argument('<action>', 'list | release')
    .argument('[id]', 'with release: the object id')
    .action(run(async (ctx, action: string, id: string | undefined) => (await import('./commands/quarantine.js')).quarantineCommand(ctx, action, id)));

  program
    .command('gc')
    .description('remove leftovers: unknown objects and unfinished multipart uploads older than --safety-age, compacted objects past their grace period')
    .option('--dry-run', 'report what would be removed, remove nothing (the safety checks still run)')
    .option('--force', 'delete unknown objects even when they are more than 10% of the namespace (never skips the check that --metadata belongs to the bucket)')
    .addOption(withEnv(new Option('--safety-age <duration>', 'keep leftovers younger than this').default(formatDuration(COMPACTOR_DEFAULTS.gcSafetyAgeMs), formatDuration(COMPACTOR_DEFAULTS.gcSafetyAgeMs))))
    .action(run(async (ctx, flags: { dryRun?: boolean; force?: boolean; safetyAge: string }) => (await import('./commands/gc.js')).gcCommand(ctx, flags)));

  program
    .command('ingest-sample')
    .description('create N streams and upload M stream set objects of synthetic records with skewed stream sizes (creates --metadata if missing)')
    .addOption(new Option('--streams <n>', 'streams to create').default('8'))
    .addOption(new Option('--objects <n>', 'stream set objects to upload').default('10'))
    .addOption(new Option('--bytes <size>', 'total payload bytes').default('16MiB'))
    .addOption(new Option('--record-size <size>', 'mean payload of one record (0.5x..1.5x)').default('16KiB'))
    .addOption(new Option('--block-size <size>', 'target data block size in the objects').default('512KiB'))
    .addOption(new Option('--skew <exponent>', 'stream i gets a share of 1/(i+1)^skew of the bytes').default('1.2'))
    .addOption(new Option('--first-stream-id <id>', 'id of the first new stream (default: after the largest existing)'))
    .addOption(new Option('--seed <n>', 'seed of the synthetic data').default('1'))
    .action(run(async (ctx, flags: IngestSampleFlags) => (await import('./commands/ingest-sample.js')).ingestSampleCommand(ctx, flags)));

  program.hook('preAction', (root, action) => {
    const file = root.opts<{ config?: string }>().config;
    if (file !== undefined) applyConfigFile(root, action, file);
  });
  return program;
}
