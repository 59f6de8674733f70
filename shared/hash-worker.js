/**
 * Worker-thread body for hashFile: reads a file through one reused 4 MiB buffer into
 * SHA3-512 and MD5. Synchronous reads are fine here (this thread does nothing else), and
 * one buffer keeps the thread's memory flat whatever the file size. Plain JavaScript on
 * purpose: a worker thread running a .ts file would load its own copy of Node's type
 * stripper (about 20 MiB) just for these lines.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

/** @type {{ path: string }} */
const { path } = workerData;
const sha3 = createHash('sha3-512');
const md5 = createHash('md5');
let bytes = 0;
try {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafeSlow(4 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, bytes);
      if (n === 0) break;
      const view = buf.subarray(0, n);
      sha3.update(view);
      md5.update(view);
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  parentPort?.postMessage({ sha3_512: sha3.digest('hex'), md5: md5.digest('hex'), bytes });
} catch (err) {
  parentPort?.postMessage({
    error: { message: err.message, code: err.code },
  });
}
