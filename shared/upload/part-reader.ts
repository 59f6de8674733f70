/**
 * Reads exactly one part's byte range of a file into a buffer of the worker's part buffer
 * pool (part-buffers.ts), which the caller gives back once the part is sent. On an error
 * the buffer goes back to the pool here.
 */
import { open } from 'node:fs/promises';
import { AppError } from '../errors.ts';
import { openIdentified, type IdentifiedFile } from '../file-identity.ts';
import type { PartBufferPool } from './part-buffers.ts';

/**
 * The bytes [offset, offset + length) of the enqueued file, read through a descriptor
 * checked to be that file (shared/file-identity.ts); FILE_CHANGED when it is another file,
 * was rewritten, or is shorter.
 */
export async function readRange(
  pool: PartBufferPool,
  file: IdentifiedFile | string,
  offset: number,
  length: number,
): Promise<Buffer> {
  // A bare path (tests, tools) is opened as it is; the worker always passes the identity.
  const path = typeof file === 'string' ? file : file.path;
  const fh = typeof file === 'string' ? await open(path, 'r') : await openIdentified(file);
  try {
    const buf = pool.take(length);
    try {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      if (done !== length)
        throw new AppError(
          'FILE_CHANGED',
          `${path} is shorter than expected: read ${done} of ${length} bytes at offset ${offset}.`,
        );
      return buf;
    } catch (err) {
      pool.give(buf);
      throw err;
    }
  } finally {
    await fh.close();
  }
}
