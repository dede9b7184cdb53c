/** The S3Stream object format: pure encoders, decoders, index helpers and key naming. */
export type { StreamRecord, IndexEntry } from './types.js';
export * from './constants.js';
export {
  encodeObject,
  encodeDataBlock,
  encodeIndex,
  encodeFooter,
  buildIndexAndFooter,
  describeBlock,
  ObjectWriter,
  type BlockRange,
} from './encode.js';
export { regroupIndex, type RegroupOptions } from './regroup.js';
export {
  decodeObject,
  decodeFooter,
  decodeIndex,
  decodeBlocks,
  decodeRecords,
  decodeDataBlocks,
  checkDataBlocks,
  type Footer,
  type DataBlockInfo,
} from './decode.js';
export { readObjectIndex, indexReadGuess, indexReadGuessFor, fetchFromTail, INDEX_MIN_GUESS, type FetchRange } from './read-index.js';
export { objectKey, parseObjectKey } from './keys.js';
