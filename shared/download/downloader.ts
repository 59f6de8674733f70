/**
 * One resumable, verified download of a JCDS file to a local path.
 *
 *   partial file    ← ranges fetched in parallel, written at their offsets
 *   checkpoint      ← the partial file's name and identity, and the coalesced ranges on
 *                     disk, saved (after fdatasync) as they complete
 *   verifier        ← hashes the contiguous prefix in a worker thread as it grows
 *   finish          ← the hashes equal Jamf's (while the file is fsynced) → move into place
 *
 * What is hashed: the SHA-256 of the package record when the caller has one that it
 * matched to this JCDS file (`expected.sha256`, worker/processors/download.ts): one thread
 * at about 1 GB/s. Otherwise MD5 and SHA3-512 as JCDS lists them, one thread each. When
 * the SHA-256 differs, the file is hashed again with MD5 and SHA3-512 from the page cache
 * and checked against the listing (a record whose `sha256` is not the stored file's, e.g.
 * a client's claim, costs a second read, never a wrong verdict); it fails only if those
 * differ too.
 *
 * The partial file is only ever the one this download created (destination.ts): a new
 * random name opened O_CREAT|O_EXCL|O_NOFOLLOW, recorded (name, device, inode) in the
 * checkpoint before a byte is written; a resumed attempt reopens it O_NOFOLLOW and checks
 * the device and inode. Everything reads and writes through that one descriptor (the hash
 * threads too), so a link or another file put at its name is never written or read.
 *
 * Resuming: a checkpoint whose partial file is missing, is not the file it created, or is
 * shorter than it claims is dropped (the download starts over in a new partial file; a
 * foreign file is left alone); otherwise only the missing ranges are fetched. A checkpoint
 * of an older version (ranges in `<dest>.partial`, no recorded file) is dropped the same
 * way, and `<dest>.partial` is not touched. Failures: a hash mismatch removes the partial
 * and fails for good (VERIFY_FAILED); a full disk keeps the partial and its checkpoint
 * (DISK_FULL) so a retry resumes; any other failure keeps both as well. The destination is
 * only ever created complete and verified, by moving the partial file itself (its inode)
 * into place, never by writing through the destination's path: without `overwrite` it is
 * hard-linked into place (which fails if anything, a link included, appeared there
 * meanwhile) and the temporary name removed; with `overwrite` it is renamed over the old
 * file atomically (a rename replaces a link at the destination, never writes through it).
 * A symbolic link at the destination is refused either way (destination.ts).
 */
import { constants } from 'node:fs';
import { link, lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Dispatcher } from 'undici';
import { AppError } from '../errors.ts';
import { formatBytes } from '../units.ts';
import {
  isPartialName,
  newPartialName,
  symlinkDestination,
  type PartialFile,
} from './destination.ts';
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
import { StreamingVerifier, type HashKind, type VerifiedHashes } from '../hash/index.ts';

export interface ExpectedFile {
  size: number;
  /** Hex MD5 as JCDS lists it. */
  md5?: string | undefined;
  /** Hex SHA3-512 as JCDS lists it. */
  sha3?: string | undefined;
  /**
   * Hex SHA-256 that Jamf computed for the package record of this file, given only when
   * that record describes the same stored bytes as the listing (its MD5 or SHA3-512 equal
   * the listed ones): then it alone is checked, MD5 and SHA3-512 only if it differs.
   */
  sha256?: string | undefined;
}

export interface DownloadFileOptions {
  fileName: string;
  /** The final path. */
  dest: string;
  overwrite: boolean;
  expected: ExpectedFile;
  /** The checkpoint from an earlier attempt: the ranges on disk… */
  done: readonly ByteRange[];
  /** …in this partial file (absent: none was recorded, or an older version's checkpoint). */
  partial?: PartialFile | undefined;
  url: UrlSource;
  /** Persists the checkpoint (the job data): the ranges on disk in the partial file. */
  checkpoint(done: ByteRange[], partial: PartialFile): Promise<void>;
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
  /** The hashes computed (SHA-256 alone when it matched Jamf's; else MD5 and SHA3-512 when listed). */
  md5?: string;
  sha3_512?: string;
  sha256?: string;
  /** True when the hashes computed equal Jamf's; false when Jamf gives no hash. */
  verified: boolean;
  /** What was checked: the record's SHA-256, or the MD5/SHA3-512 of the JCDS listing. */
  verifiedBy?: 'sha256' | 'listing';
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

/** The partial file in use: its descriptor, path, checkpoint record and size on disk. */
interface OpenPartial {
  fh: FileHandle;
  path: string;
  record: PartialFile;
  size: number;
}

function fileError(err: unknown, path: string): AppError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new AppError(
      'DISK_FULL',
      `The disk holding ${path} is full (${code}): free some space and retry the job.`,
    );
  return new AppError(
    'DESTINATION_INVALID',
    `Cannot write ${path}: ${(err as Error).message}. Check the destination folder's permissions.`,
    { cause: err },
  );
}

/** The device and inode of a bigint stat, as a checkpoint records them. */
function sameInode(st: { dev: bigint; ino: bigint }, p: PartialFile): boolean {
  return st.dev.toString() === p.dev && st.ino.toString() === p.ino;
}

/**
 * Reopens the partial file a checkpoint recorded, if it is still that file (O_NOFOLLOW,
 * same device and inode, regular); otherwise says why and returns undefined, leaving
 * whatever is at that name alone.
 */
async function reopenPartial(
  folder: string,
  p: PartialFile | undefined,
  log: (line: string) => void,
): Promise<OpenPartial | undefined> {
  if (p === undefined) return undefined;
  if (!isPartialName(p.name) || typeof p.dev !== 'string' || typeof p.ino !== 'string') {
    log(
      `the checkpoint names ${JSON.stringify(p.name)} as its partial file, which is not a name this program makes: ignored, starting over`,
    );
    return undefined;
  }
  const path = join(folder, p.name);
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') log(`the partial file ${path} is gone: starting over`);
    else if (code === 'ELOOP' || code === 'EMLINK')
      log(`${path} is a symbolic link now, not the partial file: left alone, starting over`);
    else if (code === 'ENOSPC' || code === 'EDQUOT') throw fileError(err, path);
    else log(`the partial file ${path} cannot be opened (${code ?? String(err)}): starting over`);
    return undefined;
  }
  const st = await fh.stat({ bigint: true });
  // Also one name only (a hard link to a file elsewhere has two) and this user's (a file
  // another user put there, even one that was given the freed inode number, is not ours).
  const uid = process.geteuid?.();
  if (
    !st.isFile() ||
    !sameInode(st, p) ||
    st.nlink !== 1n ||
    (uid !== undefined && st.uid !== BigInt(uid))
  ) {
    await fh.close();
    log(
      `${path} is not the partial file this download created (another file is at its name now): left alone, starting over`,
    );
    return undefined;
  }
  return { fh, path, record: p, size: Number(st.size) };
}

/** Creates a new partial file at a random name: O_CREAT|O_EXCL|O_NOFOLLOW. */
async function createPartial(folder: string): Promise<OpenPartial> {
  for (let attempt = 1; ; attempt++) {
    const name = newPartialName();
    const path = join(folder, name);
    let fh: FileHandle;
    try {
      fh = await open(
        path,
        constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o666,
      );
    } catch (err) {
      // 72 random bits: a name taken is someone planting files, not chance; try another.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 5) continue;
      throw fileError(err, path);
    }
    const st = await fh.stat({ bigint: true });
    return { fh, path, record: { name, dev: st.dev.toString(), ino: st.ino.toString() }, size: 0 };
  }
}

/** Removes the partial file, if the name still holds it (never another file). */
async function removePartial(p: OpenPartial): Promise<void> {
  const st = await lstat(p.path, { bigint: true }).catch(() => undefined);
  if (st?.isFile() && sameInode(st, p.record)) await unlink(p.path).catch(() => undefined);
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

/**
 * Moves the verified partial file itself into place, refusing to replace a file unless
 * `overwrite`, and a symbolic link at the destination always.
 */
async function moveIntoPlace(p: OpenPartial, dest: string, overwrite: boolean): Promise<void> {
  const partial = p.path;
  const there = await lstat(dest).catch(() => undefined);
  if (there?.isSymbolicLink()) throw symlinkDestination(dest, partial);
  if (there?.isDirectory())
    throw new AppError(
      'DESTINATION_INVALID',
      `The destination ${dest} is a folder now: remove it or download elsewhere; the verified download is kept as ${partial}.`,
    );
  const mine = await lstat(partial, { bigint: true }).catch(() => undefined);
  if (!mine?.isFile() || !sameInode(mine, p.record))
    throw new AppError(
      'DESTINATION_INVALID',
      `The partial file ${partial} was replaced or removed by someone else during the download: nothing was moved to ${dest}. Check who writes to ${dirname(dest)}, then retry the job (it starts over).`,
    );
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
    // A file system without hard links: check, then rename (a tiny race, accepted: the
    // rename replaces what appeared, it never writes through it).
    if ((await lstat(dest).catch(() => undefined)) !== undefined) {
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
  const folder = dirname(dest);
  const size = expected.size;
  let done = [...o.done];
  if (done.length > 0 && o.partial === undefined) {
    o.log(
      `the checkpoint was written by an older version (ranges in ${dest}.partial, a file it did not record): that file is neither trusted nor touched; starting over`,
    );
  }
  let opened = await reopenPartial(folder, o.partial, o.log);
  const claimed = done.length > 0 ? done[done.length - 1]![1] + 1 : 0;
  if (opened && opened.size < claimed) {
    o.log(
      `the checkpoint says ${formatBytes(bytesIn(done))} are on disk but ${opened.path} is shorter: starting over`,
    );
    done = [];
  }
  if (!opened) {
    done = [];
    opened = await createPartial(folder);
  }
  const p = opened;
  const partial = p.path;
  const file = p.fh;
  // Recorded before a byte is written: a crash leaves a checkpoint that names this file.
  if (done.length === 0 || p.record !== o.partial) await o.checkpoint(done, p.record);
  const resumedBytes = bytesIn(done);
  if (resumedBytes > 0)
    o.log(`resuming: ${formatBytes(resumedBytes)} of ${formatBytes(size)} already in ${partial}`);

  const listed: HashKind[] = ['md5', ...(expected.sha3 ? (['sha3_512'] as const) : [])];
  const verifier = new StreamingVerifier(partial, {
    kinds: expected.sha256 ? ['sha256'] : listed,
    fd: file.fd,
  });
  const writer = new CheckpointWriter(async () => {
    const snapshot = done;
    await file.datasync();
    await o.checkpoint(snapshot, p.record);
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
    const st = await file.stat();
    if (st.size > size) await file.truncate(size);
    // Only the tail hash stands between the last byte and the move into place: the last
    // checkpoint and the fsync run beside it (a mismatch wastes an fsync, nothing more).
    const hashStart = performance.now();
    const [hashes] = await Promise.all([verifier.finish(size), writer.flush(), file.sync()]);
    const verifyTailMs = performance.now() - hashStart;
    const rate =
      fetchMs > 0 ? ` (${((bytesFetched / 1e6) * (1000 / fetchMs)).toFixed(0)} MB/s)` : '';
    o.log(
      `fetched ${formatBytes(bytesFetched)} in ${(fetchMs / 1000).toFixed(2)} s${rate}; hashes ready ${(verifyTailMs / 1000).toFixed(2)} s after the last byte`,
    );
    let computed: VerifiedHashes = hashes;
    let mismatch = hashes.bytes !== size ? `${hashes.bytes} bytes, Jamf lists ${size}` : undefined;
    let verifiedBy: 'sha256' | 'listing' | undefined;
    if (mismatch === undefined && expected.sha256 !== undefined) {
      if (hashes.sha256 === expected.sha256.toLowerCase()) verifiedBy = 'sha256';
      else {
        o.log(
          `SHA-256 ${hashes.sha256?.slice(0, 16)}… differs from the package record's ${expected.sha256.slice(0, 16)}…: checking the hashes of the JCDS listing instead`,
        );
        if (expected.md5 === undefined && expected.sha3 === undefined) {
          mismatch = `SHA-256 ${hashes.sha256}, Jamf computed ${expected.sha256}`;
        } else {
          // finish() closes the threads whatever happens.
          const again = new StreamingVerifier(partial, { kinds: listed, fd: file.fd });
          computed = { ...(await again.finish(size)), sha256: hashes.sha256 };
        }
      }
    }
    if (mismatch === undefined && verifiedBy === undefined) {
      if (expected.md5 !== undefined && expected.md5.toLowerCase() !== computed.md5)
        mismatch = `MD5 ${computed.md5}, Jamf lists ${expected.md5}`;
      else if (expected.sha3 !== undefined && expected.sha3.toLowerCase() !== computed.sha3_512)
        mismatch = `SHA3-512 ${computed.sha3_512?.slice(0, 16)}…, Jamf lists ${expected.sha3.slice(0, 16)}…`;
      else if (expected.md5 !== undefined || expected.sha3 !== undefined) verifiedBy = 'listing';
    }
    if (mismatch !== undefined) {
      await closeFile();
      await removePartial(p);
      await o.checkpoint([], p.record).catch(() => undefined);
      throw new AppError(
        'VERIFY_FAILED',
        `The downloaded ${fileName} does not match what Jamf lists (${mismatch}): the stored file is damaged or changed during the download. Nothing was written to ${dest}; re-upload the package, then download it again.`,
        { details: { md5: computed.md5, expectedMd5: expected.md5 } },
      );
    }
    await closeFile();
    await moveIntoPlace(p, dest, o.overwrite);
    await syncFolder(dest);
    o.log(
      verifiedBy === 'sha256'
        ? `verified (SHA-256 equals the one Jamf computed for the package) and saved as ${dest}`
        : verifiedBy === 'listing'
          ? `verified (MD5${computed.sha3_512 ? ' and SHA3-512' : ''} equal Jamf's) and saved as ${dest}`
          : `saved as ${dest}; NOT verified: Jamf lists no hash for ${fileName}`,
    );
    return {
      path: dest,
      size,
      ...(computed.md5 ? { md5: computed.md5 } : {}),
      ...(computed.sha3_512 ? { sha3_512: computed.sha3_512 } : {}),
      ...(computed.sha256 ? { sha256: computed.sha256 } : {}),
      verified: verifiedBy !== undefined,
      ...(verifiedBy ? { verifiedBy } : {}),
      bytesFetched,
      resumedBytes,
      urlRefreshes: refreshes,
      fetchMs: Math.round(fetchMs),
      verifyTailMs: Math.round(verifyTailMs),
    };
  } finally {
    // The hash threads read the descriptor: they exit before it is closed.
    await verifier.close();
    await closeFile();
  }
}
