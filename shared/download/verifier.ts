/**
 * Hashes a download while it is being fetched. The ranges arrive out of order; each time
 * the contiguous run of bytes on disk from offset 0 grows, the verifier's worker thread
 * hashes the new bytes (MD5, plus SHA3-512 when Jamf lists one). When the last range is
 * in, only the tail is left to hash, so verification adds little to the download time
 * and never blocks the event loop that renews BullMQ locks.
 */
import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.ts';

export interface VerifiedHashes {
  md5: string;
  sha3_512?: string;
  bytes: number;
}

type Answer = VerifiedHashes & { error?: { message: string; code?: string } };

export class StreamingVerifier {
  private readonly worker: Worker;
  private readonly path: string;
  private posted = 0;
  private readonly answer: Promise<Answer>;
  private closed = false;

  constructor(path: string, options: { sha3: boolean }) {
    this.path = path;
    this.worker = new Worker(new URL('./verify-worker.ts', import.meta.url), {
      workerData: { path, sha3: options.sha3 },
    });
    this.answer = new Promise<Answer>((resolve, reject) => {
      this.worker.on('message', (msg: Answer) => resolve(msg));
      this.worker.once('error', reject);
      this.worker.once('exit', code => reject(new Error(`the hashing thread exited (${code})`)));
    });
    // An answer nobody awaits (an aborted download) must not become an unhandled rejection.
    this.answer.catch(() => undefined);
  }

  /** The bytes [0, upTo) are on disk: hash them in the background. */
  advance(upTo: number): void {
    if (this.closed || upTo <= this.posted) return;
    this.posted = upTo;
    this.worker.postMessage({ upTo });
  }

  /** Hashes up to `size` and returns the hashes. */
  async finish(size: number): Promise<VerifiedHashes> {
    this.worker.postMessage({ finish: size });
    try {
      const msg = await this.answer;
      if (msg.error) {
        throw new AppError('DOWNLOAD_FAILED', `Cannot read ${this.path} back to verify it: ${msg.error.message}`, { retryable: true });
      }
      return msg;
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.worker.terminate();
  }
}
