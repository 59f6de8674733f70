/**
 * File hashing off the main thread: SHA3-512 (what Jamf Pro records as hashType
 * SHA3_512) and MD5 (what JCDS lists), each in a worker thread, so a multi-GiB hash never
 * blocks the event loop that renews BullMQ locks (bullmq #2857).
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { AppError } from './errors.ts';
import type { FileHashes } from './queues/jobs.ts';

export function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

export interface HashFileOptions {
  signal?: AbortSignal;
}

type Algorithm = 'md5' | 'sha3-512';

/** One algorithm over the whole file, in its own worker thread. */
function hashInThread(
  path: string,
  algorithm: Algorithm,
  signal: AbortSignal | undefined,
): Promise<{ digest: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url), {
      workerData: { path, algorithm },
    });
    const onAbort = (): void => {
      void worker.terminate();
      reject(signal?.reason ?? new Error('hashing aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once(
      'message',
      (msg: { digest?: string; bytes?: number; error?: { message: string; code?: string } }) => {
        signal?.removeEventListener('abort', onAbort);
        void worker.terminate();
        if (msg.error) {
          reject(
            new AppError(
              msg.error.code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE',
              `Cannot read ${path} to hash it: ${msg.error.message}`,
            ),
          );
        } else resolve({ digest: msg.digest ?? '', bytes: msg.bytes ?? 0 });
      },
    );
    worker.once('error', err => {
      signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

/**
 * SHA3-512 and MD5 of a file, each in its own thread (both read the file; the second read
 * comes from the page cache). `bytes` is what both read; if the file changed length in
 * between, the two disagree and this says so.
 */
export async function hashFile(
  path: string,
  options: HashFileOptions = {},
): Promise<FileHashes & { bytes: number }> {
  const inner = new AbortController();
  const onAbort = (): void => inner.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const [sha3, md5] = await Promise.all([
      hashInThread(path, 'sha3-512', inner.signal),
      hashInThread(path, 'md5', inner.signal),
    ]).catch((err: unknown) => {
      inner.abort(err);
      throw err;
    });
    if (sha3.bytes !== md5.bytes)
      throw new AppError(
        'FILE_CHANGED',
        `${path} changed while it was hashed (read ${sha3.bytes} bytes once and ${md5.bytes} once).`,
      );
    return { sha3_512: sha3.digest, md5: md5.digest, bytes: sha3.bytes };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
