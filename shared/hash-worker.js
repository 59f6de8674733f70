/** Worker-thread body for hashFile: streams a file through SHA3-512 and MD5. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { path, start, end } = workerData as { path: string; start?: number; end?: number };
const sha3 = createHash('sha3-512');
const md5 = createHash('md5');
let bytes = 0;
const stream = createReadStream(path, {
  highWaterMark: 1 << 20,
  ...(start !== undefined ? { start } : {}),
  ...(end !== undefined ? { end } : {}),
});
stream.on('data', chunk => {
  const b = chunk as Buffer;
  sha3.update(b);
  md5.update(b);
  bytes += b.length;
});
stream.on('error', err =>
  parentPort?.postMessage({
    error: { message: err.message, code: (err as NodeJS.ErrnoException).code },
  }),
);
stream.on('end', () =>
  parentPort?.postMessage({ sha3_512: sha3.digest('hex'), md5: md5.digest('hex'), bytes }),
);
