/** Stream mutations of `SqliteMetadataStore`, each one IMMEDIATE transaction (documented on its methods). */
import { MetadataError } from '../errors.js';
import { checkObject, int, type StreamRow } from './common.js';
import type { SqliteInternals } from './sqlite-statements.js';
import type { StreamMetadata } from './types.js';

export function createStream(store: SqliteInternals, req: { streamId: number; epoch: number; startOffset: number }): Promise<StreamMetadata> {
  return store.write('createStream', () => {
    checkObject('req', req);
    const streamId = int('streamId', req.streamId);
    const epoch = int('epoch', req.epoch);
    const startOffset = int('startOffset', req.startOffset);
    if (store.st.getStream.get(streamId) !== undefined) {
      throw new MetadataError(
        'ERR_METADATA_STREAM_EXISTS',
        `stream ${streamId} already exists in ${store.path}; use getStreams to read it, or pick another stream id`,
      );
    }
    store.st.insertStream.run(streamId, epoch, startOffset, startOffset);
    return { streamId, epoch, startOffset, endOffset: startOffset, state: 'opened' as const };
  });
}

export function trimStream(store: SqliteInternals, streamId: number, newStartOffset: number): Promise<void> {
  return store.write('trimStream', () => {
    int('streamId', streamId);
    int('newStartOffset', newStartOffset);
    const s = requireStream(store, streamId, 'trim');
    if (s.state === 'deleted' || newStartOffset <= s.start_offset) return;
    store.st.trimStream.run({ start: newStartOffset, id: streamId });
    store.st.retireStreamObjects.run(store.now() + store.graceMs, streamId, newStartOffset);
    // No SSO range stays below the start: wholly below goes, straddling begins at it.
    store.st.dropRangesBelow.run(streamId, newStartOffset);
    store.st.clipRangesAt.run({ start: newStartOffset, id: streamId });
  });
}

export function deleteStream(store: SqliteInternals, streamId: number): Promise<void> {
  return store.write('deleteStream', () => {
    int('streamId', streamId);
    const s = requireStream(store, streamId, 'delete');
    if (s.state === 'deleted') return;
    store.st.setStreamState.run('deleted', streamId);
    store.st.retireStreamObjects.run(store.now() + store.graceMs, streamId, Number.MAX_SAFE_INTEGER);
    store.st.dropRangesBelow.run(streamId, Number.MAX_SAFE_INTEGER);
  });
}

export function closeStream(store: SqliteInternals, streamId: number): Promise<void> {
  return store.write('closeStream', () => {
    int('streamId', streamId);
    const s = requireStream(store, streamId, 'close');
    if (s.state === 'opened') store.st.setStreamState.run('closed', streamId);
  });
}

function requireStream(store: SqliteInternals, streamId: number, what: string): StreamRow {
  const s = store.st.getStream.get(streamId);
  if (s === undefined) {
    throw new MetadataError(
      'ERR_METADATA_STREAM_NOT_FOUND',
      `cannot ${what} stream ${streamId}: no such stream in ${store.path}; create it first with createStream`,
    );
  }
  return s;
}
