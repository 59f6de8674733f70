/**
 * File hashing off the main thread, for both directions, each algorithm in its own worker
 * thread (hash-thread.js), so a multi-GiB hash never blocks the event loop that renews
 * BullMQ locks (bullmq #2857).
 *
 * - hashFile (uploads, sync up): SHA-256 of the whole file, one thread, one read: Jamf
 *   computes the package record's `sha256` itself (jamf-wire-2026.md 1), and SHA-256 runs
 *   at about 1 GB/s a core here against 130-240 MiB/s for SHA3-512.
 * - hashFileWith: any of SHA-256, SHA3-512 and MD5 in one call, one thread each (the SHA3-512
 *   fallback when a record carries no `sha256`; downloads and sync down, which compare with
 *   the MD5 and SHA3-512 that JCDS lists).
 * - StreamingVerifier (downloads): the ranges arrive out of order; each time the
 *   contiguous run of bytes on disk from offset 0 grows, its threads hash the new bytes,
 *   so when the last range is in only the tail is left to hash and verification adds
 *   little to the download time.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.ts';

export function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

type Algorithm = 'md5' | 'sha3-512' | 'sha256';
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

/** A whole-file hash, by the name job data and results use. */
export type HashKind = 'sha256' | 'sha3_512' | 'md5';

const ALGORITHM: Record<HashKind, Algorithm> = {
  sha256: 'sha256',
  sha3_512: 'sha3-512',
  md5: 'md5',
};

/** The hex digests of the kinds asked for, and the bytes read. */
export type Digests<K extends HashKind> = { [P in K]: string } & { bytes: number };

/**
 * The hashes `kinds` of a file, each in its own thread (when there are several, each reads
 * the file; the later reads come from the page cache). `bytes` is what they read; if the
 * file changed length in between, they disagree and this says so (FILE_CHANGED).
 */
export async function hashFileWith<K extends HashKind>(
  path: string,
  kinds: readonly K[],
  options: HashFileOptions = {},
): Promise<Digests<K>> {
  const unique = [...new Set(kinds)];
  if (unique.length === 0) throw new AppError('INTERNAL', `No hash asked for ${path}`);
  const inner = new AbortController();
  const onAbort = (): void => inner.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const runs = unique.map(k => hashInThread(path, ALGORITHM[k], inner.signal, options.fd));
    // One failing stops the others; all have exited before this settles (so the caller
    // may close the descriptor they read).
    for (const r of runs) r.catch((err: unknown) => inner.abort(err));
    const settled = await Promise.allSettled(runs);
    const failed = settled.find(r => r.status === 'rejected');
    if (failed) throw failed.reason;
    const values = settled.map(
      r => (r as PromiseFulfilledResult<{ digest: string; bytes: number }>).value,
    );
    const bytes = values[0]!.bytes;
    const other = values.find(v => v.bytes !== bytes);
    if (other)
      throw new AppError(
        'FILE_CHANGED',
        `${path} changed while it was hashed (read ${bytes} bytes once and ${other.bytes} once).`,
      );
    const out: Record<string, string | number> = { bytes };
    unique.forEach((k, i) => (out[k] = values[i]!.digest));
    return out as Digests<K>;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * SHA-256 of a file (what an upload and sync up compare with the `sha256` Jamf computed for
 * the package record), in one thread reading the file once.
 */
export function hashFile(path: string, options: HashFileOptions = {}): Promise<Digests<'sha256'>> {
  return hashFileWith(path, ['sha256'], options);
}

/** What a StreamingVerifier computed: the hex digests of the kinds it was asked for. */
export type VerifiedHashes = Partial<Record<HashKind, string>> & {
  /** The bytes hashed (the least any thread read). */
  bytes: number;
};

/**
 * Hashes a file while it is being written, from offset 0 up to the offsets `advance` is
 * told are on disk: one thread per kind asked for (a download verified against the
 * package record's `sha256` runs one SHA-256 thread; one verified against the JCDS listing
 * runs MD5 and SHA3-512 side by side).
 */
export class StreamingVerifier {
  private readonly path: string;
  private readonly kinds: readonly HashKind[];
  private readonly threads: HashThread[];
  private posted = 0;
  private closed = false;

  /** `fd`: read through this descriptor (the file being written), kept open until close(). */
  constructor(path: string, options: { kinds: readonly HashKind[]; fd?: number | undefined }) {
    this.path = path;
    this.kinds = [...new Set(options.kinds)];
    if (this.kinds.length === 0) throw new AppError('INTERNAL', `No hash asked for ${path}`);
    this.threads = this.kinds.map(
      k => new HashThread(path, ALGORITHM[k], 'incremental', options.fd),
    );
  }

  /** The bytes [0, upTo) are on disk: hash them in the background. */
  advance(upTo: number): void {
    if (this.closed || upTo <= this.posted) return;
    this.posted = upTo;
    for (const t of this.threads) t.post({ upTo });
  }

  /** Hashes up to `size` and returns the hashes. */
  async finish(size: number): Promise<VerifiedHashes> {
    for (const t of this.threads) t.post({ finish: size });
    try {
      const answers = await Promise.all(this.threads.map(t => t.answer));
      const failed = answers.find(a => a.error);
      if (failed?.error) {
        throw new AppError(
          'DOWNLOAD_FAILED',
          `Cannot read ${this.path} back to verify it: ${failed.error.message}`,
          { retryable: true },
        );
      }
      const out: VerifiedHashes = { bytes: Math.min(...answers.map(a => a.bytes)) };
      this.kinds.forEach((k, i) => (out[k] = answers[i]!.digest));
      return out;
    } finally {
      await this.close();
    }
  }

  /** Stops the threads; resolves once they have exited (nothing reads the descriptor then). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.threads.map(t => t.close()));
  }
}
