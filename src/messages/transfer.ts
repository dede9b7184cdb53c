import { MessagePort } from 'node:worker_threads';

/**
 * Zero-copy transfer helpers. Object data crosses threads as transferred ArrayBuffers: after a
 * send the sender's buffer is detached (byteLength 0) and the receiver owns it.
 *
 * Node 20 pitfall: Buffers from Node's internal pool (`Buffer.from(string)`, small
 * `Buffer.allocUnsafe`) share one slab that is marked untransferable, and Node 20 silently COPIES
 * such a buffer instead of moving it. Allocate data that must move with `allocTransferable`
 * (a dedicated ArrayBuffer), never from the pool.
 */

/** A Buffer over its own ArrayBuffer (never pooled), so transferring it really moves it. */
export function allocTransferable(size: number): Buffer {
  return Buffer.allocUnsafeSlow(size);
}

/**
 * Collects what must be transferred with `value`: every distinct ArrayBuffer reachable through
 * plain objects, arrays, Maps, Sets and typed-array / DataView views, and every MessagePort.
 * SharedArrayBuffers are shared, not transferred, and are skipped. Views that share one
 * ArrayBuffer contribute it once. Cycles are handled.
 */
export function collectTransferables(value: unknown): (ArrayBuffer | MessagePort)[] {
  const out = new Set<ArrayBuffer | MessagePort>();
  const seen = new Set<object>();
  const visit = (v: unknown, depth: number): void => {
    if (typeof v !== 'object' || v === null || depth > 64) return;
    if (v instanceof ArrayBuffer) {
      if (v.byteLength > 0) out.add(v);
      return;
    }
    if (ArrayBuffer.isView(v)) {
      const b = v.buffer;
      if (b instanceof ArrayBuffer && b.byteLength > 0) out.add(b);
      return;
    }
    if (v instanceof MessagePort) {
      out.add(v);
      return;
    }
    if (typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer) return;
    if (seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      for (const x of v) visit(x, depth + 1);
    } else if (v instanceof Map) {
      for (const [k, x] of v) {
        visit(k, depth + 1);
        visit(x, depth + 1);
      }
    } else if (v instanceof Set) {
      for (const x of v) visit(x, depth + 1);
    } else {
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) return; // class instances do not survive cloning anyway
      for (const k of Object.keys(v)) visit((v as Record<string, unknown>)[k], depth + 1);
    }
  };
  visit(value, 0);
  return [...out];
}
