/**
 * MD5 of request bodies off the main thread. MD5 is the costliest step of receiving an
 * object (about 1.4 CPU-seconds per GiB here, twice everything else the server does per
 * byte), so bodies larger than one write batch are hashed by a pooled worker thread: each
 * written batch is copied once into a transferable buffer and posted in order, with at most
 * MAX_IN_FLIGHT batches queued (the writer waits on `ready()`), so a worker that falls behind
 * slows the upload instead of growing memory. The buffers travel back with each ack and are
 * reused: a worker's GC does not see memory the main thread allocated, so buffers left to it
 * pile up. Workers are
 * plain JavaScript (`eval: true`), kept idle for reuse and unref'd so they never hold the
 * process open.
 */
import { Worker } from 'node:worker_threads';

const SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let hash = null;
parentPort.on('message', m => {
  if (m.type === 'update') {
    (hash ??= createHash('md5')).update(new Uint8Array(m.data, 0, m.length));
    parentPort.postMessage({ type: 'ack', data: m.data }, [m.data]);
  } else if (m.type === 'reset') hash = null;
  else if (m.type === 'digest') {
    const d = (hash ?? createHash('md5')).digest();
    hash = null;
    parentPort.postMessage({ type: 'digest', hex: d.toString('hex') });
  }
});
`;

const MAX_IDLE = 4;
const MAX_IN_FLIGHT = 4;

type Reply = { type: 'ack'; data: ArrayBuffer } | { type: 'digest'; hex: string };
const idle: Worker[] = [];

function acquire(): Worker {
  const w = idle.pop() ?? new Worker(SOURCE, { eval: true });
  w.unref();
  return w;
}

function release(w: Worker): void {
  if (idle.length < MAX_IDLE) idle.push(w);
  else void w.terminate();
}

/** One MD5 computation in a worker; feed it in order, then `digest` or `abort` once. */
export class WorkerMd5 {
  private worker: Worker | undefined = acquire();
  private inFlight = 0;
  private waiter: (() => void) | undefined;
  private result: ((hex: string) => void) | undefined;
  private failure: Error | undefined;
  private readonly spare: ArrayBuffer[] = [];
  private readonly onMessage = (m: Reply): void => {
    if (m.type === 'ack') {
      this.spare.push(m.data);
      this.inFlight--;
      if (this.inFlight < MAX_IN_FLIGHT) this.wake();
    } else this.result?.(m.hex);
  };
  private readonly onError = (err: Error): void => {
    this.failure = err;
    this.wake();
    this.result?.('');
  };

  constructor() {
    this.worker?.on('message', this.onMessage);
    this.worker?.on('error', this.onError);
  }

  /** Copies `chunks` into one buffer and hands it to the worker. */
  update(chunks: Buffer[]): void {
    if (!this.worker) throw new Error('WorkerMd5 used after digest/abort');
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const reuse = this.spare.findIndex(b => b.byteLength >= total);
    const copy =
      reuse >= 0
        ? (this.spare.splice(reuse, 1)[0] as ArrayBuffer)
        : new ArrayBuffer(total + (total >> 3));
    const view = new Uint8Array(copy);
    let off = 0;
    for (const c of chunks) {
      view.set(c, off);
      off += c.length;
    }
    this.inFlight++;
    this.worker.postMessage({ type: 'update', data: copy, length: total }, [copy]);
  }

  /** Resolves once the worker has room for another batch. */
  ready(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.inFlight < MAX_IN_FLIGHT) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiter = () => (this.failure ? reject(this.failure) : resolve());
    });
  }

  async digest(): Promise<Buffer> {
    const w = this.worker;
    if (!w) throw new Error('WorkerMd5 used after digest/abort');
    const hex = await new Promise<string>(resolve => {
      this.result = resolve;
      w.postMessage({ type: 'digest' });
    });
    this.detach();
    if (this.failure) throw this.failure;
    release(w);
    return Buffer.from(hex, 'hex');
  }

  abort(): void {
    const w = this.worker;
    if (!w) return;
    this.detach();
    if (this.failure) {
      void w.terminate();
      return;
    }
    w.postMessage({ type: 'reset' });
    release(w);
  }

  private detach(): void {
    this.worker?.off('message', this.onMessage);
    this.worker?.off('error', this.onError);
    this.worker = undefined;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
