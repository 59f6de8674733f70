/**
 * Reads exactly one part's byte range of a file into a reused buffer. A worker holds at
 * most (part concurrency) buffers of one part size, instead of allocating 16 MiB per part
 * and waiting for the GC to return it.
 */
import { open } from 'node:fs/promises';
import { AppError } from '../errors.ts';

const pool = new Map<number, Buffer[]>();

function takeBuffer(length: number): Buffer {
  return pool.get(length)?.pop() ?? Buffer.allocUnsafeSlow(length);
}

/** Returns a buffer from readRange to the pool once nothing uses it any more. */
export function releaseBuffer(buf: Buffer): void {
  const list = pool.get(buf.length) ?? [];
  if (list.length < 16) list.push(buf);
  pool.set(buf.length, list);
}

/** The bytes [offset, offset + length) of `path`; FILE_CHANGED when the file is shorter. */
export async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = takeBuffer(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done !== length) {
      releaseBuffer(buf);
      throw new AppError(
        'FILE_CHANGED',
        `${path} is shorter than expected: read ${done} of ${length} bytes at offset ${offset}.`,
      );
    }
    return buf;
  } finally {
    await fh.close();
  }
}
