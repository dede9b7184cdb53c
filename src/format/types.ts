/** One "stream record batch": `count` offsets of one stream starting at `baseOffset`. */
export interface StreamRecord {
  streamId: number;
  epoch: number;
  baseOffset: number;
  count: number;
  payload: Uint8Array;
}

/** One 36-byte index entry: a contiguous range of one stream covering one or more data blocks. */
export interface IndexEntry {
  streamId: number;
  startOffset: number;
  endOffset: number;
  recordCount: number;
  /** Byte position of the first covered data block in the object. */
  position: number;
  /** Bytes of the covered data block(s). */
  size: number;
}
