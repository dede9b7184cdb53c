/**
 * Object keys as AutoMQ names them. The reversed hex prefix spreads consecutive ids over S3
 * key partitions; garbage collection uses `parseObjectKey` to tell our objects from others.
 */
import { invalid, isSafeNonNegative } from './bytes.js';

function hexPrefix(objectId: number): string {
  // %08x: at least 8 digits; ids past 2^32 simply get more, as in Java's String.format.
  return [...objectId.toString(16).padStart(8, '0')].reverse().join('');
}

/** `<reversed %08x id>/<namespace>/<id>`; object 1 in DEFAULT is `10000000/DEFAULT/1`. */
export function objectKey(objectId: number, namespace: string): string {
  if (!isSafeNonNegative(objectId)) invalid(`object id ${String(objectId)} is not a non-negative safe integer`);
  if (typeof namespace !== 'string' || namespace.length === 0) invalid('namespace must be a non-empty string');
  return `${hexPrefix(objectId)}/${namespace}/${objectId}`;
}

const KEY = /^([0-9a-f]{8,14})\/(.+)\/(0|[1-9][0-9]{0,15})$/;

/** The id and namespace of a key made by `objectKey`, or undefined for any other key. */
export function parseObjectKey(key: string): { objectId: number; namespace: string } | undefined {
  if (typeof key !== 'string') return undefined;
  const m = KEY.exec(key);
  if (!m) return undefined;
  const objectId = Number(m[3]);
  if (!Number.isSafeInteger(objectId)) return undefined;
  // The prefix must be the one this id gets; anything else is not ours.
  if (m[1] !== hexPrefix(objectId)) return undefined;
  return { objectId, namespace: m[2]! };
}
