/**
 * README accuracy (issue #11): every metric the library registers and every error code it can
 * throw is documented, and the README names no metric that does not exist.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRIC_NAMES } from '../../src/observability/index.js';
import { ROOT } from './helpers.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('README', () => {
  it('documents every metric, and only metrics that exist', () => {
    for (const name of METRIC_NAMES) expect(readme, name).toContain(`\`${name}`);
    const mentioned = new Set([...readme.matchAll(/`(s3sc_[a-z0-9_]+)/g)].map((m) => m[1]!));
    for (const name of mentioned) expect(METRIC_NAMES as readonly string[], name).toContain(name);
  });

  it('documents every error code (in full, or as …_SUFFIX in its family row)', () => {
    const source = readFileSync(join(ROOT, 'src/error-codes.ts'), 'utf8');
    const codes = new Set([...source.matchAll(/'(ERR_[A-Z_]+)'/g)].map((m) => m[1]!));
    expect(codes.size).toBeGreaterThan(20);
    for (const code of codes) {
      const suffix = code.split('_').slice(2).join('_');
      const documented = readme.includes(code) || (suffix.length > 0 && readme.includes(`…_${suffix}\``));
      expect(documented, code).toBe(true);
    }
  });

  it('documents every exit code', () => {
    for (const code of ['exit 2', '3 when', '130', '143']) expect(readme).toContain(code);
  });
});
