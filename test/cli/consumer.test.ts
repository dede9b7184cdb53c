/**
 * Issue #11, "a typed library": a consumer project compiles against the packed package with
 * `skipLibCheck` off. The package's public types once imported better-sqlite3's, which only a
 * devDependency (@types/better-sqlite3) provides, so a consumer's tsc failed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers.js';

let dir: string;
beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 's3sc-consumer-'));
}, 200_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The package as `npm pack` makes it, unpacked where a consumer's npm would put it. */
function installPacked(into: string): void {
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
  const tarball = join(dir, (JSON.parse(out) as { filename: string }[])[0]!.filename);
  const pkgDir = join(into, 'node_modules', 's3-stream-compactor');
  mkdirSync(pkgDir, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', pkgDir, '--strip-components=1']);
  // Its runtime dependencies, as a consumer's install would bring them; no devDependency.
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies)) {
    const link = join(into, 'node_modules', dep);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', dep), link, 'dir');
  }
  // The consumer's own: Node's types (tsc and @types/node come from its devDependencies).
  mkdirSync(join(into, 'node_modules', '@types'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(into, 'node_modules', '@types', 'node'), 'dir');
}

describe('a consumer project', () => {
  it('compiles a file that imports every public name, with skipLibCheck off', () => {
    const project = join(dir, 'consumer');
    mkdirSync(project, { recursive: true });
    installPacked(project);
    const names = Object.keys(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', `import * as m from '${join(ROOT, 'dist/index.js')}'; console.log(JSON.stringify(Object.fromEntries(Object.keys(m).map((k) => [k, 1]))))`], { encoding: 'utf8', env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } })) as Record<string, number>);
    expect(names).toContain('Compactor');
    writeFileSync(
      join(project, 'main.ts'),
      `import { ${names.join(', ')} } from 's3-stream-compactor';\n` +
        `import type { CompactorOptions, CompactionReport, MetadataStore, ObjectStorage, StreamRecord, IndexEntry } from 's3-stream-compactor';\n` +
        `export const all = [${names.join(', ')}];\n` +
        `export type T = [CompactorOptions, CompactionReport, MetadataStore, ObjectStorage, StreamRecord, IndexEntry];\n`,
    );
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, files: ['main.ts'] }),
    );
    let output = '';
    try {
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project, encoding: 'utf8' });
    } catch (e) {
      output = `${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? ''}`;
    }
    expect(output).toBe('');
  }, 120_000);
});
