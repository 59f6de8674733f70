/**
 * Low-level file I/O for the simulator's object store: a batched stream-to-file writer
 * (one `writev` of ~1 MiB in flight while the next batch fills, so the network and the disk
 * overlap) and a Readable that streams a byte range across a list of segment files.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { WorkerMd5 } from './md5-pool.ts';

const BATCH_BYTES = 1024 * 1024;
const READ_BYTES = 1024 * 1024;

export interface Segment {
  /** Absolute path of the segment file. */
  path: string;
  size: number;
}

async function writeAll(fh: FileHandle, chunks: Buffer[]): Promise<void> {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const { bytesWritten } = await fh.writev(chunks);
  if (bytesWritten < total) {
    // Short write (rare on regular files): write the rest as one buffer.
    const rest = Buffer.concat(chunks).subarray(bytesWritten);
    let off = 0;
    while (off < rest.length) off += (await fh.write(rest, off)).bytesWritten;
  }
}

/**
 * Streams `body` into a new file at `path` and returns its size and MD5. Bodies that fit
 * in one batch are hashed here; larger ones by a worker thread (see md5-pool.ts), batch by
 * batch as they are written. On any error the file is left for the caller to remove.
 */
export async function writeStreamToFile(
  body: AsyncIterable<Buffer | string>,
  path: string,
): Promise<{ size: number; md5: Buffer }> {
  const fh = await open(path, 'w');
  let size = 0;
  let pending: Promise<void> | undefined;
  let writeError: unknown;
  let md5: WorkerMd5 | undefined;
  try {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    for await (const raw of body) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
      if (chunk.length === 0) continue;
      size += chunk.length;
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH_BYTES) {
        if (pending) await pending;
        if (writeError) throw writeError;
        const toWrite = batch;
        batch = [];
        batchBytes = 0;
        md5 ??= new WorkerMd5();
        await md5.ready();
        md5.update(toWrite);
        pending = writeAll(fh, toWrite).catch((err: unknown) => {
          writeError = err;
        });
      }
    }
    if (pending) await pending;
    if (writeError) throw writeError;
    if (batch.length > 0) await writeAll(fh, batch);
    if (!md5) return { size, md5: batch.reduce((h, c) => h.update(c), createHash('md5')).digest() };
    md5.update(batch);
    const digest = await md5.digest();
    md5 = undefined;
    return { size, md5: digest };
  } finally {
    md5?.abort();
    if (pending) await pending;
    await fh.close();
  }
}

/**
 * A Readable over bytes [start, end] (inclusive) of the concatenation of `segments`.
 * `onClose` runs exactly once when the stream ends, errors or is destroyed.
 */
export function readSegments(
  segments: Segment[],
  start: number,
  end: number,
  onClose: () => void,
): Readable {
  let segIndex = 0;
  let segOffset = start;
  // Find the segment that holds `start`.
  while (segIndex < segments.length && segOffset >= (segments[segIndex]?.size ?? 0)) {
    segOffset -= segments[segIndex]?.size ?? 0;
    segIndex++;
  }
  let remaining = end - start + 1;
  let fh: FileHandle | undefined;
  let closed = false;
  // push() may trigger another read() while the loop below is still running: one loop only.
  let busy = false;
  const finish = (): void => {
    if (closed) return;
    closed = true;
    onClose();
  };

  const stream = new Readable({
    highWaterMark: 2 * READ_BYTES,
    read(): void {
      if (busy) return;
      busy = true;
      void (async (): Promise<void> => {
        try {
          while (remaining > 0) {
            const seg = segments[segIndex];
            if (!seg) throw new Error('object segments are shorter than the object size');
            if (segOffset >= seg.size) {
              await fh?.close();
              fh = undefined;
              segIndex++;
              segOffset = 0;
              continue;
            }
            if (!fh) {
              const opened = await open(seg.path, 'r');
              if (this.destroyed) {
                await opened.close();
                return;
              }
              fh = opened;
            }
            const want = Math.min(READ_BYTES, remaining, seg.size - segOffset);
            const buf = Buffer.allocUnsafe(want);
            const { bytesRead } = await fh.read(buf, 0, want, segOffset);
            if (bytesRead === 0) throw new Error(`segment ${seg.path} is shorter than recorded`);
            segOffset += bytesRead;
            remaining -= bytesRead;
            if (this.destroyed) return;
            if (!this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead))) return;
          }
          await fh?.close();
          fh = undefined;
          this.push(null);
        } catch (err) {
          this.destroy(err as Error);
        } finally {
          busy = false;
        }
      })();
    },
    destroy(err, cb): void {
      const handle = fh;
      fh = undefined;
      finish();
      if (handle) {
        handle.close().then(
          () => cb(err),
          () => cb(err),
        );
      } else cb(err);
    },
  });
  stream.once('end', finish);
  if (remaining <= 0) stream.push(null);
  return stream;
}

/** Flips a few bytes of a file in place (first, middle, last): a corruption fault. */
export async function flipBytes(path: string, size: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    for (const pos of new Set([0, Math.floor(size / 2), size - 1])) {
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, pos);
      b[0] = (b[0] ?? 0) ^ 0xff;
      await fh.write(b, 0, 1, pos);
    }
  } finally {
    await fh.close();
  }
}
