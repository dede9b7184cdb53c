import { OptionsError } from '../errors.js';
import type { ObjectStorage } from './types.js';

/** What S3 (and most compatible stores) enforce for every multipart part but the last. */
export const S3_MIN_PART_SIZE = 5 * 1024 * 1024;

/**
 * Refuses a part size the storage would refuse: caught where the option enters, not at the
 * first UploadPart of a run (S3's EntityTooSmall).
 */
export function checkPartSizeForStorage(storage: Pick<ObjectStorage, 'minPartSize'>, partSize: number): void {
  const min = storage.minPartSize ?? S3_MIN_PART_SIZE;
  if (partSize < min) {
    throw new OptionsError(
      'partSize',
      `must be at least ${min} bytes, the smallest multipart part the storage accepts (S3: 5 MiB; S3Storage option minPartSize), got ${partSize}`,
    );
  }
}
