/**
 * One resumable, verified download of a JCDS file to a local path.
 *
 *   <dest>.partial  ← ranges fetched in parallel, written at their offsets
 *   checkpoint      ← the coalesced ranges on disk, saved (after fdatasync) as they complete
 *   verifier        ← hashes the contiguous prefix in a worker thread as it grows
 *   finish          ← MD5 (and SHA3-512 when known) equal Jamf's → fsync → move into place
 *
 * Resuming: a checkpoint whose partial file is missing or shorter than it claims is
 * dropped (the download starts over); otherwise only the missing ranges are fetched.
 * Failures: a hash mismatch removes the partial and fails for good (VERIFY_FAILED); a
 * full disk keeps the partial and its checkpoint (DISK_FULL) so a retry resumes; any
 * other failure keeps both as well. The destination is only ever created complete and
 * verified: without `overwrite` it is linked into place (which fails if it appeared
 * meanwhile); with `overwrite` it is renamed over the old file atomically.
 */
import { link, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Dispatcher } from 'undici';
import { AppError } from '../errors.ts';
import { formatBytes } from '../units.ts';
import { partialPath } from './destination.ts';
import { fetchRanges, type UrlSource } from './range-fetcher.ts';
import {
  RANGE_CONCURRENCY,
  RANGE_SIZE,
  addRange,
  bytesIn,
  contiguousPrefix,
  missingRanges,
  type ByteRange,
} from './ranges.ts';
import { StreamingVerifier } from '../hash/index.ts';

export interface ExpectedFile {
  size: number;
  /** Hex MD5 as JCDS lists it. */
  md5?: string | undefined;
  /** Hex SHA3-512 as JCDS lists it. */
  sha3?: string | undefined;
}

export interface DownloadFileOptions {
  fileName: string;
  /** The final path. */
  dest: string;
  overwrite: boolean;
  expected: ExpectedFile;
  /** The checkpoint from an earlier attempt. */
  done: readonly ByteRange[];
  url: UrlSource;
  /** Persists the checkpoint (the job data). */
  checkpoint(done: ByteRange[]): Promise<void>;
  progress(bytesOnDisk: number): void;
  log(line: string): void;
  signal?: AbortSignal | undefined;
  concurrency?: number;
  rangeSize?: number;
  dispatcher?: Dispatcher;
}

/** One file downloaded and moved into place; a download job's result adds to it (DownloadResult). */
export interface DownloadFileResult {
  path: string;
  size: number;
  md5: string;
  sha3_512?: string;
  /** True when the MD5 (and SHA3-512 when listed) equal Jamf's; false when Jamf lists no hash. */
  verified: boolean;
  /** Body bytes received by this run (the attempt that finished). */
  bytesFetched: number;
  /** Bytes that were already on disk from earlier attempts (a resumed download). */
  resumedBytes: number;
  /** Presigned URLs fetched again after a 403 (expired). */
  urlRefreshes: number;
  /** Time spent fetching the missing ranges, ms. */
  fetchMs: number;
  /** Time from the last byte written to the hashes being ready, ms (hashing overlaps the fetch). */
  verifyTailMs: number;
}

/** Serialises checkpoint writes: at most one in flight, the latest state always saved. */
class CheckpointWriter {
  private readonly save: () => Promise<void>;
  private running: Promise<void> | undefined;
  private dirty = false;
  private error: unknown;

  constructor(save: () => Promise<void>) {
    this.save = save;
  }

  request(): void {
    this.dirty = true;
    this.running ??= this.loop();
  }

  private async loop(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      try {
        await this.save();
      } catch (err) {
        this.error ??= err;
      }
    }
    this.running = undefined;
  }

  /** Waits for the last save; rethrows the first save error. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    if (this.error !== undefined) throw this.error;
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

async function syncFolder(path: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dirname(path), 'r');
    await fh.sync();
  } catch {
    // Not every file system lets a folder be fsynced; the rename is still atomic.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Moves the verified partial into place, refusing to replace a file unless `overwrite`. */
async function moveIntoPlace(partial: string, dest: string, overwrite: boolean): Promise<void> {
  if (overwrite) {
    await rename(partial, dest);
    return;
  }
  try {
    await link(partial, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new AppError(
        'DESTINATION_EXISTS',
        `${dest} appeared while it was being downloaded: the verified download is kept as ${partial}; remove ${dest} and retry the job, or download again with --overwrite.`,
      );
    }
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'EMLINK') throw err;
    // A file system without hard links: check, then rename (a tiny race, accepted).
    if ((await sizeOf(dest)) !== undefined) {
      throw new AppError(
        'DESTINATION_EXISTS',
        `${dest} appeared while it was being downloaded: remove it and retry the job, or download again with --overwrite.`,
      );
    }
    await rename(partial, dest);
    return;
  }
  await unlink(partial);
}

/** Downloads, verifies and moves one file into place (see the module comment). */
export async function downloadFile(o: DownloadFileOptions): Promise<DownloadFileResult> {
  const { fileName, dest, expected } = o;
  const partial = partialPath(dest);
  const size = expected.size;
  let done = [...o.done];
  const onDisk = await sizeOf(partial);
  const claimed = done.length > 0 ? done[done.length - 1]![1] + 1 : 0;
  if (done.length > 0 && (onDisk === undefined || onDisk < claimed)) {
    o.log(
      `the checkpoint says ${formatBytes(bytesIn(done))} are on disk but ${partial} is ${onDisk === undefined ? 'missing' : 'shorter'}: starting over`,
    );
    done = [];
    await o.checkpoint(done);
  }
  const resumedBytes = bytesIn(done);
  if (resumedBytes > 0)
    o.log(`resuming: ${formatBytes(resumedBytes)} of ${formatBytes(size)} already in ${partial}`);

  let file: FileHandle;
  try {
    file = await open(partial, done.length > 0 ? 'r+' : 'w');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT')
      throw new AppError(
        'DISK_FULL',
        `The disk holding ${partial} is full (${code}): free some space and retry the job.`,
      );
    throw new AppError(
      'DESTINATION_INVALID',
      `Cannot write ${partial}: ${(err as Error).message}. Check the destination folder's permissions.`,
      { cause: err },
    );
  }
  const verifier = new StreamingVerifier(partial, { sha3: Boolean(expected.sha3) });
  const writer = new CheckpointWriter(async () => {
    const snapshot = done;
    await file.datasync();
    await o.checkpoint(snapshot);
  });
  // Keep the hashing threads busy from the first bytes on: the contiguous prefix includes
  // the part of the range in flight that starts where the done ranges end.
  const inProgress = new Map<number, number>();
  let verifiedUpTo = 0;
  const advanceVerifier = (): void => {
    let end = contiguousPrefix(done);
    for (
      let next = inProgress.get(end);
      next !== undefined && next > end;
      next = inProgress.get(end)
    )
      end = next;
    verifiedUpTo = end;
    verifier.advance(end);
  };
  let bytesOnDisk = resumedBytes;
  advanceVerifier();
  let refreshes = 0;
  let bytesFetched: number;
  let fetchMs: number;
  let closed = false;
  const closeFile = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await file.close().catch(() => undefined);
  };
  try {
    const ranges = missingRanges(size, done, o.rangeSize ?? RANGE_SIZE);
    const fetchStart = performance.now();
    try {
      const fetched = await fetchRanges({
        url: o.url,
        file,
        size,
        ranges,
        concurrency: o.concurrency ?? RANGE_CONCURRENCY,
        fileName,
        signal: o.signal,
        ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
        onRangeDone: range => {
          done = addRange(done, range);
          inProgress.delete(range[0]);
          advanceVerifier();
          writer.request();
        },
        onBytes: (n, range, writtenTo) => {
          bytesOnDisk += n;
          inProgress.set(range[0], writtenTo);
          if (range[0] <= verifiedUpTo) advanceVerifier();
          o.progress(bytesOnDisk);
        },
        onRefresh: () => {
          refreshes++;
          o.log('the presigned URL expired or was refused (403): got a fresh one from Jamf');
        },
      });
      bytesFetched = fetched.bytesFetched;
      fetchMs = performance.now() - fetchStart;
    } catch (err) {
      await writer.flush().catch(() => undefined);
      if (err instanceof AppError && err.code === 'DISK_FULL') {
        const missing = size - bytesIn(done);
        throw new AppError(
          'DISK_FULL',
          `The disk holding ${dest} is full (ENOSPC) after ${formatBytes(bytesIn(done))} of ${formatBytes(size)} of ${fileName}: free at least ${formatBytes(missing)} and retry the job; ${partial} is kept and the download resumes where it stopped.`,
          { cause: err, details: { partial, missingBytes: missing } },
        );
      }
      throw err;
    }
    await writer.flush();

    const st = await file.stat();
    if (st.size > size) await file.truncate(size);
    const hashStart = performance.now();
    const hashes = await verifier.finish(size);
    const verifyTailMs = performance.now() - hashStart;
    const rate =
      fetchMs > 0 ? ` (${((bytesFetched / 1e6) * (1000 / fetchMs)).toFixed(0)} MB/s)` : '';
    o.log(
      `fetched ${formatBytes(bytesFetched)} in ${(fetchMs / 1000).toFixed(2)} s${rate}; hashes ready ${(verifyTailMs / 1000).toFixed(2)} s after the last byte`,
    );
    const md5ok = expected.md5 === undefined || expected.md5.toLowerCase() === hashes.md5;
    const sha3ok = expected.sha3 === undefined || expected.sha3.toLowerCase() === hashes.sha3_512;
    if (!md5ok || !sha3ok || hashes.bytes !== size) {
      await closeFile();
      await unlink(partial).catch(() => undefined);
      await o.checkpoint([]).catch(() => undefined);
      const what = !md5ok
        ? `MD5 ${hashes.md5}, Jamf lists ${expected.md5}`
        : !sha3ok
          ? `SHA3-512 ${hashes.sha3_512?.slice(0, 16)}…, Jamf lists ${expected.sha3?.slice(0, 16)}…`
          : `${hashes.bytes} bytes, Jamf lists ${size}`;
      throw new AppError(
        'VERIFY_FAILED',
        `The downloaded ${fileName} does not match what Jamf lists (${what}): the stored file is damaged or changed during the download. Nothing was written to ${dest}; re-upload the package, then download it again.`,
        { details: { md5: hashes.md5, expectedMd5: expected.md5 } },
      );
    }
    await file.sync();
    await closeFile();
    await moveIntoPlace(partial, dest, o.overwrite);
    await syncFolder(dest);
    const verified = expected.md5 !== undefined || expected.sha3 !== undefined;
    o.log(
      verified
        ? `verified (MD5${hashes.sha3_512 ? ' and SHA3-512' : ''} equal Jamf's) and saved as ${dest}`
        : `saved as ${dest}; NOT verified: Jamf lists no hash for ${fileName}`,
    );
    return {
      path: dest,
      size,
      md5: hashes.md5,
      ...(hashes.sha3_512 ? { sha3_512: hashes.sha3_512 } : {}),
      verified,
      bytesFetched,
      resumedBytes,
      urlRefreshes: refreshes,
      fetchMs: Math.round(fetchMs),
      verifyTailMs: Math.round(verifyTailMs),
    };
  } finally {
    verifier.close();
    await closeFile();
  }
}
