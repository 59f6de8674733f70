/**
 * Worker-thread body of every file hash (shared/hash/index.ts): one thread hashes one file
 * with one algorithm (`sha256`, `md5` or `sha3-512`), so several algorithms run in parallel
 * and the slowest sets the pace alone instead of all of them in sequence. An upload's
 * whole-file hash is SHA-256 alone (about 1 GB/s a core). Synchronous reads through one reused buffer: this thread does
 * nothing else, and its memory stays flat whatever the file size. Plain JavaScript on
 * purpose: a worker thread running a .ts file would load its own copy of Node's type
 * stripper (about 20 MiB) just for these lines.
 *
 * Two modes, chosen by workerData:
 * - whole (`{ path, algorithm, whole: true }`, hashFile): reads the file to its end, answers
 *   `{ digest, bytes }` with the bytes read (the size need not be known), and exits.
 * - incremental (`{ path, algorithm }`, StreamingVerifier): hashes from offset 0 up to the
 *   offsets it is told are on disk, so a download is hashed while it is still being
 *   fetched (the bytes come from the page cache). Messages in: `{ upTo }` (hash up to this
 *   offset, exclusive) and `{ finish }` (hash up to this offset, then answer
 *   `{ digest, bytes }`). A file that ends before an offset it was told about is an error.
 *
 * Errors answer `{ error: { message, code } }` (code ENOENT for a missing file).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * `fd`, when given, is a descriptor the parent opened and checked (threads share the
 * process's descriptors): it is read instead of opening `path`, and never closed here.
 * @type {{ path: string, algorithm: 'md5' | 'sha3-512' | 'sha256', whole?: boolean, fd?: number }}
 */
const { path, algorithm, whole = false, fd: givenFd } = workerData;
const hash = createHash(algorithm);
// Whole-file hashes run one thread per upload job (several jobs per worker); a download
// has one verifier and reads larger spans as its ranges land. A whole-file hash reads 64
// KiB at a time (as fast as 4 MiB: 283 vs 278 MiB/s for SHA3-512, 744 vs 714 for MD5),
// below glibc's mmap threshold: 4 MiB buffers, one per thread, two threads per upload, left
// freed chunks in malloc's arenas, and a worker's RSS settled 37 MiB higher over a batch
// (test/integration/faults-memory.test.ts: 255 against 218 MiB).
const buffer = Buffer.allocUnsafeSlow(whole ? 64 << 10 : 8 << 20);
let pos = 0;
/** @type {number | undefined} */
let fd = givenFd;
let failed = false;

/**
 * Hashes from `pos` up to `target` (Infinity: to the end of the file).
 * @param {number} target
 */
function hashUpTo(target) {
  fd ??= openSync(path, 'r');
  while (pos < target) {
    const n = readSync(fd, buffer, 0, Math.min(buffer.length, target - pos), pos);
    if (n === 0) {
      if (target === Infinity) return;
      throw new Error(`${path} ends at byte ${pos}, before byte ${target} that was written`);
    }
    hash.update(buffer.subarray(0, n));
    pos += n;
  }
}

function closeFile() {
  if (fd !== undefined && fd !== givenFd) closeSync(fd);
  fd = undefined;
}

function answer() {
  closeFile();
  parentPort?.postMessage({ digest: hash.digest('hex'), bytes: pos });
}

/** @param {unknown} err */
function fail(err) {
  failed = true;
  try {
    closeFile();
  } catch {
    // The error being reported matters more.
  }
  const e = /** @type {NodeJS.ErrnoException} */ (err);
  parentPort?.postMessage({ error: { message: e.message, code: e.code } });
}

if (whole) {
  try {
    hashUpTo(Infinity);
    answer();
  } catch (err) {
    fail(err);
  }
} else {
  parentPort?.on('message', (/** @type {{ upTo?: number, finish?: number }} */ msg) => {
    if (failed) return;
    try {
      hashUpTo(msg.finish ?? msg.upTo ?? 0);
      if (msg.finish !== undefined) answer();
    } catch (err) {
      fail(err);
    }
  });
}
