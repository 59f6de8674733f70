/**
 * File hashing off the main thread: SHA3-512 (what Jamf Pro records as hashType
 * SHA3_512) and MD5 (what JCDS lists), in one pass, in a worker thread, so a multi-GiB
 * hash never blocks the event loop that renews BullMQ locks (bullmq #2857).
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

export function hashFile(
  path: string,
  options: HashFileOptions = {},
): Promise<FileHashes & { bytes: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url), {
      workerData: { path },
    });
    const onAbort = (): void => {
      void worker.terminate();
      reject(options.signal?.reason ?? new Error('hashing aborted'));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.once(
      'message',
      (msg: {
        sha3_512?: string;
        md5?: string;
        bytes?: number;
        error?: { message: string; code?: string };
      }) => {
        options.signal?.removeEventListener('abort', onAbort);
        void worker.terminate();
        if (msg.error) {
          reject(
            new AppError(
              msg.error.code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE',
              `Cannot read ${path} to hash it: ${msg.error.message}`,
            ),
          );
        } else {
          resolve({ sha3_512: msg.sha3_512 ?? '', md5: msg.md5 ?? '', bytes: msg.bytes ?? 0 });
        }
      },
    );
    worker.once('error', err => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}
