/**
 * File hashing off the main thread, for both directions: SHA3-512 (what Jamf Pro records
 * as hashType SHA3_512) and MD5 (what JCDS lists), each algorithm in its own worker thread
 * (hash-thread.js), so a multi-GiB hash never blocks the event loop that renews BullMQ
 * locks (bullmq #2857).
 *
 * - hashFile (uploads, sync): the whole file, read to its end.
 * - StreamingVerifier (downloads): the ranges arrive out of order; each time the
 *   contiguous run of bytes on disk from offset 0 grows, its threads hash the new bytes,
 *   so when the last range is in only the tail is left to hash and verification adds
 *   little to the download time.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.ts';
import type { FileHashes } from '../queues/jobs.ts';

export function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

type Algorithm = 'md5' | 'sha3-512';
type Answer = { digest: string; bytes: number; error?: { message: string; code?: string } };

const THREAD_SCRIPT = new URL('./hash-thread.js', import.meta.url);

/** One algorithm over one file in a worker thread (see hash-thread.js for its two modes). */
class HashThread {
  private readonly worker: Worker;
  /** The thread's one answer: the digest, or the error it met. */
  readonly answer: Promise<Answer>;

  /**
   * `fd`: an open descriptor of the file to read (threads share the process's descriptors),
   * so the bytes hashed are those of the file the caller opened and checked, not of
   * whatever the path names now. The caller keeps it open until the thread has exited.
   */
  constructor(
    path: string,
    algorithm: Algorithm,
    mode: 'whole' | 'incremental',
    fd: number | undefined,
  ) {
    this.worker = new Worker(THREAD_SCRIPT, {
      workerData: { path, algorithm, whole: mode === 'whole', fd },
    });
    this.answer = new Promise<Answer>((resolve, reject) => {
      this.worker.once('message', (msg: Answer) => resolve(msg));
      this.worker.once('error', reject);
      // Messages are delivered before 'exit': this only rejects a thread that died silent.
      this.worker.once('exit', code =>
        reject(new Error(`the ${algorithm} hashing thread exited (${code})`)),
      );
    });
    // An answer nobody awaits (an aborted hash or download) must not become an unhandled
    // rejection.
    this.answer.catch(() => undefined);
  }

  post(message: { upTo: number } | { finish: number }): void {
    this.worker.postMessage(message);
  }

  /** Stops the thread; resolves once it has exited (it reads nothing after that). */
  close(): Promise<void> {
    return this.worker.terminate().then(
      () => undefined,
      () => undefined,
    );
  }
}

export interface HashFileOptions {
  signal?: AbortSignal | undefined;
  /**
   * Read through this open descriptor instead of opening `path` (which then only names the
   * file in messages): the file the caller checked (shared/file-identity.ts). It must stay
   * open until hashFile settles; hashFile settles only once its threads have exited.
   */
  fd?: number | undefined;
}

/** One algorithm over the whole file, in its own worker thread. */
function hashInThread(
  path: string,
  algorithm: Algorithm,
  signal: AbortSignal | undefined,
  fd: number | undefined,
): Promise<{ digest: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const thread = new HashThread(path, algorithm, 'whole', fd);
    let aborted = false;
    const onAbort = (): void => {
      // Settles once the thread has exited (its own exit is not the error to report).
      aborted = true;
      void thread.close().then(() => reject(signal?.reason ?? new Error('hashing aborted')));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    thread.answer.then(
      msg => {
        if (aborted) return;
        signal?.removeEventListener('abort', onAbort);
        void thread.close();
        if (msg.error) {
          reject(
            new AppError(
              msg.error.code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE',
              `Cannot read ${path} to hash it: ${msg.error.message}`,
            ),
          );
        } else resolve({ digest: msg.digest, bytes: msg.bytes });
      },
      (err: unknown) => {
        if (aborted) return;
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
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
    const runs = [
      hashInThread(path, 'sha3-512', inner.signal, options.fd),
      hashInThread(path, 'md5', inner.signal, options.fd),
    ];
    // One failing stops the other; both have exited before this settles (so the caller
    // may close the descriptor they read).
    for (const r of runs) r.catch((err: unknown) => inner.abort(err));
    const settled = await Promise.allSettled(runs);
    const failed = settled.find(r => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [sha3, md5] = settled.map(
      r => (r as PromiseFulfilledResult<{ digest: string; bytes: number }>).value,
    ) as [{ digest: string; bytes: number }, { digest: string; bytes: number }];
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

export interface VerifiedHashes {
  md5: string;
  sha3_512?: string;
  bytes: number;
}

/**
 * Hashes a file while it is being written, from offset 0 up to the offsets `advance` is
 * told are on disk (one thread for MD5, one for SHA3-512 when asked).
 */
export class StreamingVerifier {
  private readonly path: string;
  private readonly md5: HashThread;
  private readonly sha3: HashThread | undefined;
  private posted = 0;
  private closed = false;

  /** `fd`: read through this descriptor (the file being written), kept open until close(). */
  constructor(path: string, options: { sha3: boolean; fd?: number | undefined }) {
    this.path = path;
    this.md5 = new HashThread(path, 'md5', 'incremental', options.fd);
    this.sha3 = options.sha3
      ? new HashThread(path, 'sha3-512', 'incremental', options.fd)
      : undefined;
  }

  private threads(): HashThread[] {
    return this.sha3 ? [this.md5, this.sha3] : [this.md5];
  }

  /** The bytes [0, upTo) are on disk: hash them in the background. */
  advance(upTo: number): void {
    if (this.closed || upTo <= this.posted) return;
    this.posted = upTo;
    for (const t of this.threads()) t.post({ upTo });
  }

  /** Hashes up to `size` and returns the hashes. */
  async finish(size: number): Promise<VerifiedHashes> {
    for (const t of this.threads()) t.post({ finish: size });
    try {
      const [md5, sha3] = await Promise.all(this.threads().map(t => t.answer));
      const failed = [md5, sha3].find(a => a?.error);
      if (!md5 || failed?.error) {
        throw new AppError(
          'DOWNLOAD_FAILED',
          `Cannot read ${this.path} back to verify it: ${failed?.error?.message ?? 'no answer'}`,
          { retryable: true },
        );
      }
      return {
        md5: md5.digest,
        ...(sha3 ? { sha3_512: sha3.digest } : {}),
        bytes: Math.min(md5.bytes, sha3?.bytes ?? md5.bytes),
      };
    } finally {
      await this.close();
    }
  }

  /** Stops the threads; resolves once they have exited (nothing reads the descriptor then). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.threads().map(t => t.close()));
  }
}
