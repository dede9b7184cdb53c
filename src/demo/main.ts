/**
 * `npm run demo`: an end-to-end run on an in-process S3 emulator. See ./run.ts.
 *
 * This entry only sets the environment before anything loads the AWS SDK (static imports are
 * evaluated first, so the demo proper is imported dynamically).
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { main } = await import('./run.js');
process.exitCode = await main(process.argv.slice(2));
