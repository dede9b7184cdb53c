/**
 * Byte-layout constants of the S3Stream object format (docs/object-format.md).
 * Kept in one place so the encoder, the decoders and the merger cannot drift apart.
 */

export const RECORD_MAGIC = 0x22;
export const BLOCK_MAGIC = 0x5a;
/** Written by every writer; readers ignore it (AutoMQ's readers do too). */
export const BLOCK_FLAG = 0x02;
export const FOOTER_MAGIC = 0x88e241b785f4cff7n;

export const RECORD_HEADER_SIZE = 33;
export const BLOCK_HEADER_SIZE = 10;
export const INDEX_ENTRY_SIZE = 36;
export const FOOTER_SIZE = 48;

/** Regrouped index entries stay strictly below this many bytes (AutoMQ's reader budget). */
export const MAX_INDEX_ENTRY_SIZE = 1024 * 1024;

/** Counts, deltas and sizes are signed int32 on disk. */
export const INT32_MAX = 0x7fffffff;

/** The tail-first index read guesses this much, plus INDEX_GUESS_PER_MIB per MiB of object. */
export const INDEX_GUESS_BASE = 8 * 1024;
export const INDEX_GUESS_PER_MIB = INDEX_ENTRY_SIZE;
