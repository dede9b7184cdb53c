/**
 * Part buffers of one pipeline attempt, reused once their upload is durable. A fresh buffer costs
 * page faults on first touch and, freed, waits for a GC and then for the allocator to give its
 * pages back; a reused one costs neither, so the thread's memory follows the budget instead of
 * the garbage. Bounded: what it keeps idle is at most `max` parts, and it is the attempt's (gone
 * with it), so nothing is held between runs.
 */
export class PartPool {
  readonly #free: Uint8Array[] = [];

  constructor(
    readonly partSize: number,
    readonly max: number,
  ) {}

  /** `size` bytes, not zeroed: a pooled buffer (a view of it) when it fits in one part. */
  take(size: number): Uint8Array {
    if (size <= this.partSize) {
      const buf = this.#free.pop() ?? allocUnpooled(this.partSize);
      return size === this.partSize ? buf : buf.subarray(0, size);
    }
    return allocUnpooled(size);
  }

  /**
   * Takes a buffer back once nothing reads it any more (its upload succeeded: a failed request
   * may still be writing it to a socket). Views of a part-size buffer are taken back whole.
   */
  give(view: Uint8Array): void {
    if (view.buffer.byteLength !== this.partSize || view.byteOffset !== 0 || this.#free.length >= this.max) return;
    this.#free.push(new Uint8Array(view.buffer as ArrayBuffer, 0, this.partSize));
  }

  get idle(): number {
    return this.#free.length;
  }
}

/** Its own ArrayBuffer (allocUnsafeSlow: never a slice of Node's shared pool), not zero-filled. */
function allocUnpooled(size: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(size);
  return new Uint8Array(b.buffer, b.byteOffset, size);
}
