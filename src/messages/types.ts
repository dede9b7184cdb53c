/**
 * The message model shared by every port in the pipeline. A message is a plain object with a
 * string `type` discriminant; each port carries a union of such messages, declared by the code
 * at both ends, so `switch (msg.type)` narrows and a send of a message the other end does not
 * understand is a compile error.
 *
 * Declaring a union for a port:
 *
 *   type ReaderToMerger =
 *     | { type: 'block'; iteration: number; index: number; buffer: ArrayBuffer }
 *     | { type: 'iteration.end'; iteration: number };
 *
 * and then `TypedPort<ReaderToMerger, never>` at the merger (receives) and
 * `TypedPort<never, ReaderToMerger>` at the reader (sends), or a `LocalChannel<ReaderToMerger>`
 * between actors of one thread.
 */

/** Anything that travels on a typed port. Fields must be structured-cloneable. */
export interface Message {
  readonly type: string;
}

/** The member of union `U` whose `type` is `T`. */
export type MessageOf<U extends Message, T extends string> = Extract<U, { type: T }>;

/** The `type` strings of union `U`. */
export type MessageType<U extends Message> = U['type'];

/** `U` itself; fails to compile when `U` is not a union of messages (a declaration-site check). */
export type MessageUnion<U extends Message> = U;
