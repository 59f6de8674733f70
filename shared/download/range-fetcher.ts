/**
 * Fetches byte ranges of a presigned URL into a file, several at a time, each written at
 * its own offset (positional writes), over keep-alive connections (undici).
 *
 * The bytes take the shortest path the client allows: undici's dispatch API hands each
 * body chunk to a handler (no Readable, no async iterator, no promise per chunk); the
 * chunks of a range are gathered, not copied, and written with one `pwritev` per
 * WRITE_BATCH, one write in flight per range while the next batch fills. A range whose
 * next batch is full while its write is still in flight pauses its connection (TCP
 * backpressure), so memory is bounded by about concurrency × 2 × WRITE_BATCH whatever the
 * file size, and a slow disk slows the download instead of filling the heap.
 *
 * Per range: a dropped connection, a short body, a 5xx or a 429 is retried with backoff,
 * continuing from the last byte written (not from the start of the range); a 403 (the
 * presigned URL expired, or was refused) asks the UrlSource for a fresh URL, shared by
 * every range in flight, which is not a failure; a 404 means the object is gone. The
 * first range that fails for good stops the others (their requests are aborted), and
 * every range completed before that has been reported through `onRangeDone` (the
 * checkpoint). A full disk (ENOSPC, EDQUOT) is a DISK_FULL error.
 *
 * The URL is a bearer secret: it never appears in an error message or a log line.
 */
import type { FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, type Dispatcher } from 'undici';
import { coalesce, type Coalesced } from '../coalesce.ts';
import { AppError, redactText } from '../errors.ts';
import { MiB } from '../units.ts';
import type { ByteRange } from './ranges.ts';

/** Gives the presigned URL, and a fresh one after a 403 (one refresh shared by all). */
export interface UrlSource {
  get(): Promise<string>;
  refresh(stale: string): Promise<string>;
}

/** A UrlSource over a function that asks Jamf for a new URL. */
export class PresignedUrl implements UrlSource {
  private value: string | undefined;
  /** One load in flight, shared by `get` and `refresh`; the URL is kept on success. */
  private readonly fetch: Coalesced<string>;
  /** URLs fetched after the first (diagnostics, job log). */
  refreshes = 0;

  constructor(load: () => Promise<string>) {
    this.fetch = coalesce(async () => {
      const url = await load();
      this.value = url;
      return url;
    });
  }

  get(): Promise<string> {
    if (this.value !== undefined) return Promise.resolve(this.value);
    return this.fetch();
  }

  refresh(stale: string): Promise<string> {
    const pending = this.fetch.pending;
    if (pending) return pending;
    if (this.value !== undefined && this.value !== stale) return Promise.resolve(this.value);
    this.refreshes++;
    return this.fetch();
  }
}

let sharedAgent: Agent | undefined;

/** One keep-alive connection pool per process for every download. */
export function downloadAgent(): Agent {
  sharedAgent ??= new Agent({
    connections: 64,
    keepAliveTimeout: 10_000,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  return sharedAgent;
}

export interface FetchRangesOptions {
  url: UrlSource;
  file: FileHandle;
  /** The whole object's size (checked against Content-Range). */
  size: number;
  ranges: readonly ByteRange[];
  concurrency: number;
  /** For messages only. */
  fileName: string;
  signal?: AbortSignal | undefined;
  /** Called once per range, after all its bytes are written. */
  onRangeDone(range: ByteRange): void;
  /** Called as bytes are written: `n` new bytes, the range's bytes up to `writtenTo` (exclusive) are on disk. */
  onBytes(n: number, range: ByteRange, writtenTo: number): void;
  /** Called after a 403 made the URL be fetched again. */
  onRefresh?(): void;
  dispatcher?: Dispatcher;
  /** Attempts per range for transient failures. @defaultValue 6 */
  attempts?: number;
  /** First backoff, ms. @defaultValue 250 */
  backoffMs?: number;
}

export interface FetchRangesResult {
  /** Body bytes received (including any later thrown away). */
  bytesFetched: number;
}

/**
 * A range's body chunks (about 64 KiB each) are written in batches of this size, one
 * `pwritev` each: few syscalls, and no copy (the chunks are gathered, not joined).
 */
const WRITE_BATCH = 1 * MiB;
/** …or of this many chunks, whichever comes first (Linux takes up to 1024 iovecs). */
const MAX_IOVECS = 256;
/** 403s in a row on a just-issued URL before the refusal is taken as final. */
const MAX_REFUSALS = 4;

class TransientError extends Error {
  override name = 'TransientError';
}

function diskError(err: unknown, fileName: string): AppError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new AppError('DISK_FULL', `The disk is full (${code}) while writing ${fileName}.`, {
      cause: err,
    });
  }
  return new AppError(
    'DOWNLOAD_FAILED',
    `Cannot write ${fileName} to disk: ${(err as Error).message}`,
    {
      cause: err,
      retryable: code === 'EIO' || code === 'EAGAIN',
    },
  );
}

/** S3's error code and message from an XML error body, for messages (never the URL). */
function s3Reason(status: number, body: string): string {
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  return redactText([`HTTP ${status}`, code, message].filter(Boolean).join(' '));
}

/** Writes the buffers at `position` with as few syscalls as possible (no copy). */
async function writeAll(file: FileHandle, buffers: Buffer[], position: number): Promise<number> {
  const total = buffers.reduce((n, b) => n + b.length, 0);
  let written = 0;
  let rest = buffers;
  while (written < total) {
    const { bytesWritten } = await file.writev(rest, position + written);
    if (bytesWritten <= 0)
      throw Object.assign(new Error('the write made no progress'), { code: 'EIO' });
    written += bytesWritten;
    if (written < total) {
      // A short write (rare on regular files): drop what was written and go on.
      let skip = bytesWritten;
      const next: Buffer[] = [];
      for (const b of rest) {
        if (skip >= b.length) skip -= b.length;
        else {
          next.push(skip > 0 ? b.subarray(skip) : b);
          skip = 0;
        }
      }
      rest = next;
    }
  }
  return total;
}

/** A response that is not the range's bytes: its status and (the start of) its body. */
interface Refused {
  status: number;
  body: string;
}

/** At most this much of an error body is kept (S3's XML errors are far shorter). */
const ERROR_BODY_LIMIT = 16 * 1024;

interface RangeGet {
  url: string;
  dispatcher: Dispatcher;
  signal: AbortSignal;
  file: FileHandle;
  fileName: string;
  /** The whole object's size (checked against Content-Range). */
  size: number;
  /** The first byte to fetch and the last (inclusive). */
  pos: number;
  end: number;
  /** Body bytes arrived (counted before anything is thrown away). */
  onReceived(n: number): void;
  /** `n` bytes were written; the range's bytes before `writtenTo` are on disk. */
  onWritten(n: number, writtenTo: number): void;
}

/**
 * One GET of bytes [pos, end], its body written to the file as it arrives. Resolves with
 * undefined once the body has ended and every byte of it is written (the caller checks
 * whether the range is complete), or with the status and body of a response that is not
 * the range (403, 404, 5xx…). Rejects with the connection's error, or a disk error, once
 * what had arrived before it is written (so a retry continues after it).
 */
function getRange(g: RangeGet): Promise<Refused | undefined> {
  return new Promise((resolve, reject) => {
    const target = new URL(g.url);
    let pos = g.pos;
    let refused: Refused | undefined;
    let controller: Dispatcher.DispatchController | undefined;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    /** Bytes of the write in flight (0: none). */
    let writing = 0;
    let ended = false;
    let failure: unknown;
    let settled = false;

    const settle = (): void => {
      if (settled || writing > 0) return;
      if (batchBytes > 0 && !(failure instanceof AppError)) {
        write();
        return;
      }
      settled = true;
      g.signal.removeEventListener('abort', onAbort);
      if (failure !== undefined) reject(failure);
      else resolve(refused);
    };
    const write = (): void => {
      const buffers = batch;
      writing = batchBytes;
      batch = [];
      batchBytes = 0;
      writeAll(g.file, buffers, pos).then(
        n => {
          writing = 0;
          pos += n;
          g.onWritten(n, pos);
          if (ended || failure !== undefined) {
            settle();
            return;
          }
          if (batchBytes >= WRITE_BATCH || batch.length >= MAX_IOVECS) write();
          // The batch that fills now has room again: let the connection deliver.
          if (controller?.paused) controller.resume();
        },
        (err: unknown) => {
          writing = 0;
          batchBytes = 0;
          batch = [];
          failure = diskError(err, g.fileName);
          if (!ended) controller?.abort(failure as Error);
          settle();
        },
      );
    };
    const onAbort = (): void => controller?.abort(g.signal.reason as Error);

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (g.signal.aborted) c.abort(g.signal.reason as Error);
      },
      onResponseStart(c, status, headers) {
        if (status !== 206 && !(status === 200 && g.pos === 0 && g.end === g.size - 1)) {
          refused = { status, body: '' };
          return;
        }
        const contentRange = headers['content-range'];
        const total =
          typeof contentRange === 'string' ? /\/(\d+)\s*$/.exec(contentRange)?.[1] : undefined;
        if (total !== undefined && Number(total) !== g.size) {
          failure = new AppError(
            'DOWNLOAD_FAILED',
            `The JCDS file ${g.fileName} is now ${total} bytes, not ${g.size}: it changed during the download; the download starts over.`,
            { retryable: true, details: { restart: true } },
          );
          c.abort(failure as Error);
        }
      },
      onResponseData(c, chunk) {
        if (refused) {
          if (refused.body.length < ERROR_BODY_LIMIT) refused.body += chunk.toString('utf8');
          return;
        }
        if (failure !== undefined) return;
        g.onReceived(chunk.length);
        // Bytes past the range (a server that sends more than asked) are not written.
        const room = g.end + 1 - (pos + writing + batchBytes);
        const piece = chunk.length > room ? chunk.subarray(0, Math.max(0, room)) : chunk;
        if (piece.length === 0) return;
        batch.push(piece);
        batchBytes += piece.length;
        if (batchBytes < WRITE_BATCH && batch.length < MAX_IOVECS) return;
        if (writing === 0) write();
        else c.pause();
      },
      onResponseEnd() {
        ended = true;
        settle();
      },
      onResponseError(_c, err) {
        ended = true;
        failure ??= err;
        settle();
      },
    };
    g.signal.addEventListener('abort', onAbort, { once: true });
    try {
      g.dispatcher.dispatch(
        {
          origin: target.origin,
          path: `${target.pathname}${target.search}`,
          method: 'GET',
          headers: { range: `bytes=${pos}-${g.end}` },
        },
        handler,
      );
    } catch (err) {
      g.signal.removeEventListener('abort', onAbort);
      settled = true;
      reject(err);
    }
  });
}

/** Fetches every range; resolves when all are written, rejects with the first failure. */
export async function fetchRanges(options: FetchRangesOptions): Promise<FetchRangesResult> {
  const { file, size, fileName } = options;
  const dispatcher = options.dispatcher ?? downloadAgent();
  const attempts = options.attempts ?? 6;
  const backoffMs = options.backoffMs ?? 250;
  const stop = new AbortController();
  const onOuterAbort = (): void => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let next = 0;
  let bytesFetched = 0;
  let failure: unknown;

  const fetchOne = async (range: ByteRange): Promise<void> => {
    const end = range[1];
    let pos = range[0];
    let failures = 0;
    let refusals = 0;
    let url = await options.url.get();
    for (;;) {
      stop.signal.throwIfAborted();
      const before = pos;
      try {
        const refused = await getRange({
          url,
          dispatcher,
          signal: stop.signal,
          file,
          fileName,
          size,
          pos,
          end,
          onReceived: n => (bytesFetched += n),
          onWritten: (n, writtenTo) => {
            pos = writtenTo;
            options.onBytes(n, range, writtenTo);
          },
        });
        if (refused) {
          const reason = s3Reason(refused.status, refused.body);
          if (refused.status === 403) {
            if (++refusals > MAX_REFUSALS) {
              throw new AppError(
                'DOWNLOAD_FAILED',
                `S3 refused the download URL of ${fileName} even just after Jamf issued it (${reason}): check that the API client may read JCDS files.`,
              );
            }
            url = await options.url.refresh(url);
            options.onRefresh?.();
            continue;
          }
          if (refused.status === 404) {
            throw new AppError(
              'DOWNLOAD_FAILED',
              `The JCDS file ${fileName} no longer exists in storage (${reason}): list the files again (jcds ls).`,
            );
          }
          if (refused.status === 416) {
            throw new AppError(
              'DOWNLOAD_FAILED',
              `The JCDS file ${fileName} changed size during the download (${reason}); the download starts over.`,
              {
                retryable: true,
                details: { restart: true },
              },
            );
          }
          throw new TransientError(`${reason} for bytes ${pos}-${end} of ${fileName}`);
        }
        if (pos > end) return;
        throw new TransientError(
          `the connection ended after byte ${pos - 1} of ${range[0]}-${end} of ${fileName}`,
        );
      } catch (err) {
        if (stop.signal.aborted) throw stop.signal.reason ?? err;
        if (err instanceof AppError) throw err;
        if (pos > before) {
          failures = 0;
          refusals = 0;
        }
        if (++failures >= attempts) {
          throw new AppError(
            'DOWNLOAD_FAILED',
            `Bytes ${range[0]}-${end} of ${fileName} failed ${failures} times in a row (last: ${redactText((err as Error).message)}); the job will retry from its checkpoint.`,
            { cause: err, retryable: true },
          );
        }
        await sleep(Math.min(backoffMs * 2 ** (failures - 1), 10_000), undefined, {
          signal: stop.signal,
        }).catch(() => undefined);
      }
    }
  };

  const runner = async (): Promise<void> => {
    while (failure === undefined && !stop.signal.aborted) {
      const range = options.ranges[next++];
      if (!range) return;
      try {
        await fetchOne(range);
        options.onRangeDone(range);
      } catch (err) {
        if (failure === undefined) {
          failure = err;
          stop.abort(err);
        }
        return;
      }
    }
  };

  try {
    const n = Math.max(1, Math.min(options.concurrency, options.ranges.length));
    await Promise.all(Array.from({ length: n }, runner));
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
  if (failure !== undefined) throw failure;
  options.signal?.throwIfAborted();
  return { bytesFetched };
}
