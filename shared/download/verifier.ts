/**
 * Hashes a download while it is being fetched. The ranges arrive out of order; each time
 * the contiguous run of bytes on disk from offset 0 grows, the verifier's worker threads
 * (one for MD5, one for SHA3-512 when Jamf lists one) hash the new bytes. When the last
 * range is in, only the tail is left to hash, so verification adds little to the
 * download time and never blocks the event loop that renews BullMQ locks.
 */
import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.ts';

export interface VerifiedHashes {
  md5: string;
  sha3_512?: string;
  bytes: number;
}

type Algorithm = 'md5' | 'sha3-512';
type Answer = { digest: string; bytes: number; error?: { message: string; code?: string } };

class HashThread {
  readonly worker: Worker;
  readonly answer: Promise<Answer>;

  constructor(path: string, algorithm: Algorithm) {
    this.worker = new Worker(new URL('./verify-worker.js', import.meta.url), {
      workerData: { path, algorithm },
    });
    this.answer = new Promise<Answer>((resolve, reject) => {
      this.worker.on('message', (msg: Answer) => resolve(msg));
      this.worker.once('error', reject);
      this.worker.once('exit', code =>
        reject(new Error(`the ${algorithm} hashing thread exited (${code})`)),
      );
    });
    // An answer nobody awaits (an aborted download) must not become an unhandled rejection.
    this.answer.catch(() => undefined);
  }
}

export class StreamingVerifier {
  private readonly path: string;
  private readonly md5: HashThread;
  private readonly sha3: HashThread | undefined;
  private posted = 0;
  private closed = false;

  constructor(path: string, options: { sha3: boolean }) {
    this.path = path;
    this.md5 = new HashThread(path, 'md5');
    this.sha3 = options.sha3 ? new HashThread(path, 'sha3-512') : undefined;
  }

  private threads(): HashThread[] {
    return this.sha3 ? [this.md5, this.sha3] : [this.md5];
  }

  /** The bytes [0, upTo) are on disk: hash them in the background. */
  advance(upTo: number): void {
    if (this.closed || upTo <= this.posted) return;
    this.posted = upTo;
    for (const t of this.threads()) t.worker.postMessage({ upTo });
  }

  /** Hashes up to `size` and returns the hashes. */
  async finish(size: number): Promise<VerifiedHashes> {
    for (const t of this.threads()) t.worker.postMessage({ finish: size });
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
      this.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.threads()) void t.worker.terminate();
  }
}
