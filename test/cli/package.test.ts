/**
 * Issue #11, packaging: what `npm pack` would publish. The demo needs a devDependency (fauxqs),
 * so it is not shipped; every source map points at a shipped file; the licence is there and
 * matches package.json.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers.js';

let files: string[];
beforeAll(async () => {
  await ensureBuilt();
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
}, 200_000);

describe('the published package', () => {
  it('ships the library, its sources, docs and LICENSE; not the demo', () => {
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/cli/main.js');
    expect(files).toContain('LICENSE');
    expect(files).toContain('docs/object-format.md');
    expect(files.filter((f) => f.includes('/demo/'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('bench/'))).toEqual([]);
  });

  it('every source map points at files that are shipped', () => {
    const maps = files.filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(10);
    const shipped = new Set(files.map((f) => normalize(f)));
    for (const m of maps) {
      const { sources } = JSON.parse(readFileSync(join(ROOT, m), 'utf8')) as { sources: string[] };
      for (const s of sources) expect(shipped.has(normalize(join(dirname(m), s))), `${m} -> ${s}`).toBe(true);
    }
  });

  it('LICENSE is the Apache 2.0 text package.json names', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string; keywords: string[] };
    expect(pkg.license).toBe('Apache-2.0');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(pkg.keywords).toContain('automq');
  });
});
