import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import { objectKey, parseObjectKey } from '../../src/format/index.js';

describe('objectKey', () => {
  it('follows the spec example', () => {
    expect(objectKey(1, 'DEFAULT')).toBe('10000000/DEFAULT/1');
  });

  it('reverses the zero-padded lowercase hex id', () => {
    expect(objectKey(0, 'ns')).toBe('00000000/ns/0');
    expect(objectKey(0x12abcdef, 'ns')).toBe('fedcba21/ns/313249263');
    expect(objectKey(255, 'DEFAULT')).toBe('ff000000/DEFAULT/255');
  });

  it('ids past 32 bits get more digits, as %08x does', () => {
    expect(objectKey(0x1_0000_0000, 'ns')).toBe('000000001/ns/4294967296');
  });

  it('rejects ids that are not non-negative safe integers, and empty namespaces', () => {
    for (const id of [-1, 1.5, Number.NaN, 2 ** 53]) expect(() => objectKey(id, 'ns')).toThrow(FormatError);
    expect(() => objectKey(1, '')).toThrow(FormatError);
  });
});

describe('parseObjectKey', () => {
  it('round-trips every key objectKey makes', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.string({ minLength: 1 }), (id, ns) => {
        expect(parseObjectKey(objectKey(id, ns))).toEqual({ objectId: id, namespace: ns });
      }),
    );
  });

  it('keeps namespaces that contain slashes', () => {
    expect(parseObjectKey('10000000/a/b/1')).toEqual({ objectId: 1, namespace: 'a/b' });
  });

  it('does not recognize other keys', () => {
    for (const k of [
      '',
      'foo',
      '10000000/DEFAULT/2', // prefix of another id
      '1000000/DEFAULT/1', // 7 digits
      '10000000/DEFAULT/01', // not canonical decimal
      '10000000//1', // empty namespace
      '10000000/DEFAULT/1/', // trailing slash
      '10000000/DEFAULT/', // no id
      '1000000A/DEFAULT/10', // upper case
      '00000000/DEFAULT/-0',
      '2fffffffffffff/DEFAULT/9007199254740994', // past 2^53
    ])
      expect(parseObjectKey(k), k).toBeUndefined();
  });
});
