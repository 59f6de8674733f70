/**
 * Which file an upload reads. A path names whatever is there now; an upload must publish
 * the file that was enqueued, so the producer records the file's identity (device, inode,
 * size, mtime, ctime) and the worker opens the path, `fstat`s the descriptor it got and
 * compares, then reads through that same descriptor (hash threads, part reads and the
 * request bodies all take it). What each field catches:
 * - device + inode: another file put in its place (renamed over it, or a symbolic link to
 *   another file of the same size, which the open also refuses: O_NOFOLLOW);
 * - size + mtime: an ordinary rewrite;
 * - ctime: a rewrite in place whose mtime was put back (`touch -r`): the kernel sets ctime
 *   on every write and on every metadata change, and no system call lets a user set it.
 *   A chmod or an added extended attribute changes it too: that also counts as a change.
 *
 * A path the producer found to be a symbolic link (`jcds upload latest.pkg`, a link inside
 * a synced folder, or one followed with --follow-symlinks) is recorded with
 * `followSymlink`: it is opened through the link, and the identity of the file reached
 * must still be the one recorded, so a link re-pointed elsewhere is caught the same way.
 */
import { constants, type BigIntStats, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import { AppError } from './errors.ts';
import { hashFileWith, type Digests, type HashKind } from './hash/index.ts';

/** The identity of a file as recorded at enqueue (job data: plain JSON). */
export interface FileIdentity {
  /**
   * The host whose st_dev `dev` is: device numbers are given per machine (one NFS share
   * has another on each host), so they are compared only on the host that recorded them;
   * elsewhere the inode (the server's file id on NFS), size, mtime and ctime still are.
   */
  host: string;
  /** st_dev, decimal (a 64-bit value: kept as text so no precision is lost). */
  dev: string;
  /** st_ino, decimal (64-bit, as text). */
  ino: string;
  size: number;
  mtimeMs: number;
  /** Status-change time: moves on every write, even when mtime is put back. */
  ctimeMs: number;
}

/** A file an upload reads: where it is, what it is called in Jamf, and its identity. */
export interface IdentifiedFile extends FileIdentity {
  path: string;
  fileName: string;
  /** The path is a symbolic link the producer chose to follow (see the module comment). */
  followSymlink?: boolean | undefined;
}

/**
 * The fields of an identified file, picked from a larger object (the producer's checked
 * file, a sync listing entry, an upload's job data), as job data carries them.
 */
export function identifiedFile(f: IdentifiedFile): IdentifiedFile {
  return {
    path: f.path,
    fileName: f.fileName,
    host: f.host,
    dev: f.dev,
    ino: f.ino,
    size: f.size,
    mtimeMs: f.mtimeMs,
    ctimeMs: f.ctimeMs,
    ...(f.followSymlink ? { followSymlink: true } : {}),
  };
}

/** The identity of a stat result; `big` (a bigint stat of the same file) gives exact dev/ino. */
export function identityOf(st: Stats, big: BigIntStats): FileIdentity {
  return {
    host: hostname(),
    dev: big.dev.toString(),
    ino: big.ino.toString(),
    size: st.size,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
  };
}

const iso = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));

/**
 * What differs between the identity recorded and the one found, in words (empty when the
 * file is the same). Pure: the unit tests give it every case.
 */
export function describeChange(recorded: FileIdentity, found: FileIdentity): string[] {
  const out: string[] = [];
  const device = recorded.host !== found.host || recorded.dev === found.dev;
  if (!device || recorded.ino !== found.ino) {
    out.push(
      `it is another file (device ${recorded.dev} inode ${recorded.ino} → device ${found.dev} inode ${found.ino}: replaced or moved over)`,
    );
  }
  if (recorded.size !== found.size) out.push(`size ${recorded.size} → ${found.size} bytes`);
  if (recorded.mtimeMs !== found.mtimeMs)
    out.push(`modified ${iso(recorded.mtimeMs)} → ${iso(found.mtimeMs)}`);
  if (recorded.ctimeMs !== found.ctimeMs) {
    const mtimeKept = recorded.mtimeMs === found.mtimeMs && out.length === 0;
    out.push(
      `status changed ${iso(recorded.ctimeMs)} → ${iso(found.ctimeMs)}${mtimeKept ? ' (rewritten in place with its modified time put back, or its permissions or attributes changed)' : ''}`,
    );
  }
  return out;
}

/**
 * Problems with the identity fields of job data (which a dashboard user can write):
 * empty when they are well formed. Pure.
 */
export function identityProblems(d: Partial<IdentifiedFile>): string[] {
  const out: string[] = [];
  if (typeof d.path !== 'string' || !isAbsolute(d.path)) out.push('path is not an absolute path');
  if (typeof d.host !== 'string' || d.host === '') out.push('host is missing');
  for (const k of ['dev', 'ino'] as const)
    if (typeof d[k] !== 'string' || !/^\d{1,20}$/.test(d[k])) out.push(`${k} is missing`);
  for (const k of ['size', 'mtimeMs', 'ctimeMs'] as const)
    if (typeof d[k] !== 'number' || !Number.isFinite(d[k])) out.push(`${k} is missing`);
  if (d.followSymlink !== undefined && typeof d.followSymlink !== 'boolean')
    out.push('followSymlink is not true or false');
  return out;
}

/** JOB_DATA_INVALID unless the job carries a well-formed file identity. */
export function requireIdentity(d: Partial<IdentifiedFile>): void {
  const problems = identityProblems(d);
  if (problems.length === 0) return;
  throw new AppError(
    'JOB_DATA_INVALID',
    `The job for ${JSON.stringify(d.fileName ?? d.path)} does not carry the file identity recorded at enqueue (${problems.join(', ')}): it was not added by jcds upload, jcds sync or the library (or by an older version). Nothing was read or published; enqueue the file again with jcds upload.`,
    { details: { problems } },
  );
}

function fileChanged(f: IdentifiedFile, what: string, cause?: unknown): AppError {
  return new AppError(
    'FILE_CHANGED',
    `${f.path} is not the file enqueued for ${f.fileName}: ${what}. Nothing was published; enqueue it again (jcds upload) once it is final.`,
    { details: { path: f.path }, ...(cause === undefined ? {} : { cause }) },
  );
}

/**
 * Opens the enqueued file for reading and checks it is still the one recorded; returns the
 * handle to read it through. FILE_CHANGED (not retryable) names what changed. The caller
 * closes the handle.
 */
export async function openIdentified(f: IdentifiedFile): Promise<FileHandle> {
  requireIdentity(f);
  // O_NONBLOCK: a FIFO put in the file's place must not block the open (it is refused
  // below as not a regular file); regular files ignore the flag.
  const flags =
    constants.O_RDONLY | constants.O_NONBLOCK | (f.followSymlink ? 0 : constants.O_NOFOLLOW);
  let fh: FileHandle;
  try {
    fh = await open(f.path, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK')
      throw fileChanged(f, 'it was replaced by a symbolic link (not followed)', err);
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw fileChanged(f, 'it no longer exists (moved or deleted)', err);
    if (code === 'EACCES' || code === 'EPERM')
      throw new AppError(
        'FILE_UNREADABLE',
        `${f.path} cannot be read (permission denied): fix its permissions or run the workers as its owner, then enqueue it again.`,
        { cause: err },
      );
    throw new AppError('FILE_UNREADABLE', `${f.path} cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw fileChanged(f, 'it is no longer a regular file');
    const changes = describeChange(f, identityOf(st, await fh.stat({ bigint: true })));
    if (changes.length > 0) throw fileChanged(f, changes.join('; '));
    return fh;
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** FILE_CHANGED unless the file at its path is still the one recorded at enqueue. */
export async function assertIdentity(f: IdentifiedFile): Promise<void> {
  const fh = await openIdentified(f);
  await fh.close();
}

/**
 * The hashes `kinds` (SHA-256 alone unless told) of the enqueued file, read through one
 * descriptor checked to be that file; FILE_CHANGED when it is not, or when fewer or more
 * bytes than recorded were read.
 */
export async function hashIdentified<K extends HashKind = 'sha256'>(
  f: IdentifiedFile,
  signal?: AbortSignal,
  kinds: readonly K[] = ['sha256'] as unknown as readonly K[],
): Promise<Digests<K>> {
  const fh = await openIdentified(f);
  try {
    const h = await hashFileWith(f.path, kinds, { signal, fd: fh.fd });
    if (h.bytes !== f.size)
      throw fileChanged(f, `${h.bytes} bytes were read of the ${f.size} recorded`);
    return h;
  } finally {
    await fh.close();
  }
}
