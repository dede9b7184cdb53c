import { CompactorError, MetadataError } from '../errors.js';

/** Maps SQLite failures to MetadataError codes that name the file and the fix; our own errors pass through. */
export function mapError(err: unknown, path: string, op: string): unknown {
  if (err instanceof CompactorError) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const where = `metadata database ${path}`;
  if (err instanceof TypeError && /directory does not exist/.test(message)) {
    return new MetadataError('ERR_METADATA_IO', `cannot open ${where}: its directory does not exist; create the directory or fix the path`, { cause: err });
  }
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const io = (text: string, retryable: boolean) =>
    new MetadataError('ERR_METADATA_IO', `${op} failed on ${where}: ${text} (${code}: ${message})`, { cause: err, retryable });
  if (code === 'SQLITE_NOTADB') {
    return new MetadataError(
      'ERR_METADATA_NOT_A_DATABASE',
      `${path} is not a SQLite database (${message}); point the store at a new or empty file, or at the metadata file this library created`,
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_FULL')) return io('the disk is full; free space on the volume that holds the file, then retry', true);
  if (code.startsWith('SQLITE_IOERR')) return io('an I/O error; check the disk (full, failing, unmounted) and the file permissions, then retry', true);
  if (code.startsWith('SQLITE_CANTOPEN')) return io('cannot open the file; check the path exists, and that the file and its directory are readable and writable', false);
  if (code.startsWith('SQLITE_READONLY')) return io('the file is read-only; make the file and its directory writable (and the volume not mounted read-only)', false);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return io('another connection holds the database lock; retry, or stop the other process', true);
  if (code.startsWith('SQLITE_CORRUPT')) return io('the file is corrupt; restore it from a backup', false);
  return err;
}
