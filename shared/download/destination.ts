/**
 * Where a download goes. The producer resolves the destination before enqueueing (a
 * folder gets the file name appended; a missing parent folder or an existing file is
 * refused with the fix), and the worker checks the same rules again before it writes,
 * because the file system may have changed while the job waited, and because job data is
 * input (a dashboard user can add any job): the destination must lie in a folder the
 * operator allows (JCDS_DOWNLOAD_DIRS, checked on real paths).
 *
 * The destination itself is never followed: a symbolic link there is refused (not
 * written through, not replaced), whether or not overwrite is asked for. Folders on the
 * way may be links (`/tmp` on macOS); containment is decided on their real paths.
 *
 * The bytes go to a temporary file beside the destination with a random name
 * (`.jcds-<12 random characters>.partial`, 26 bytes whatever the destination's name, so
 * a 255-byte name still downloads), created with O_CREAT|O_EXCL|O_NOFOLLOW: nothing can be
 * planted at a name nobody knows, and nothing that is there is opened. Its name, device
 * and inode go into the job's checkpoint, so a resumed attempt finds its own file again
 * (O_NOFOLLOW, then the same device and inode) and nothing else.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { AppError } from '../errors.ts';
import { isInside, validateFileName } from '../files.ts';

/** The temporary file of a download, as its checkpoint records it. */
export interface PartialFile {
  /** Its name in the destination's folder (PARTIAL_NAME). */
  name: string;
  /** st_dev and st_ino when it was created, decimal. */
  dev: string;
  ino: string;
}

const PARTIAL_NAME = /^\.jcds-[A-Za-z0-9_-]{12}\.partial$/;

/** A fresh temporary file name: 72 random bits, nobody can guess it in advance. */
export function newPartialName(): string {
  return `.jcds-${randomBytes(9).toString('base64url')}.partial`;
}

/** True for a name newPartialName makes (a checkpoint naming anything else is ignored). */
export function isPartialName(name: unknown): name is string {
  return typeof name === 'string' && PARTIAL_NAME.test(name);
}

/**
 * DESTINATION_NOT_ALLOWED unless `dest`'s folder, resolved to its real path, lies inside
 * one of `allowed` (also resolved). An allowed folder that does not exist allows nothing.
 */
export async function checkDownloadAllowed(
  dest: string,
  allowed: readonly string[],
): Promise<void> {
  if (typeof dest !== 'string' || !isAbsolute(dest) || dest.includes('\0')) {
    throw new AppError(
      'DESTINATION_INVALID',
      `The download destination ${JSON.stringify(dest)} is not an absolute path: enqueue the download with jcds download, which resolves it.`,
    );
  }
  validateFileName(basename(dest));
  await checkDownloadFolder(dirname(dest), allowed, `The download destination ${dest}`);
}

/**
 * DESTINATION_NOT_ALLOWED unless `folder`, resolved to its real path, lies inside one of
 * `allowed` (also resolved); `what` names it in the message (a destination, a sync folder).
 */
export async function checkDownloadFolder(
  folder: string,
  allowed: readonly string[],
  what: string,
): Promise<void> {
  let real: string;
  try {
    real = await realpath(folder);
  } catch {
    throw new AppError(
      'DESTINATION_INVALID',
      `The destination folder ${folder} does not exist: create it first (mkdir -p ${JSON.stringify(folder)}) or choose an existing folder.`,
    );
  }
  const roots = await Promise.all(allowed.map(a => realpath(a).catch(() => undefined)));
  if (roots.some(r => r !== undefined && isInside(real, r))) return;
  throw new AppError(
    'DESTINATION_NOT_ALLOWED',
    `${what}${real !== folder ? ` (in ${real})` : ''} is outside the folders this worker writes downloads to (JCDS_DOWNLOAD_DIRS: ${allowed.join(', ')}): download into one of them, or add the folder to JCDS_DOWNLOAD_DIRS on every worker.`,
    { details: { folder: real, allowed: [...allowed] } },
  );
}

async function statOrUndefined(
  path: string,
  follow = true,
): Promise<Awaited<ReturnType<typeof stat>> | undefined> {
  try {
    return follow ? await stat(path) : await lstat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new AppError(
      'DESTINATION_INVALID',
      `Cannot inspect the download destination ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** DESTINATION_INVALID for a destination that is a symbolic link (never followed or replaced). */
export function symlinkDestination(path: string, kept?: string): AppError {
  return new AppError(
    'DESTINATION_INVALID',
    `The destination ${path} is a symbolic link: downloads never write through a link or replace one. Remove the link, or download to the real path it points at.${kept ? ` The verified download is kept as ${kept}: retry the job once the link is gone and it is moved into place without fetching again.` : ''}`,
    { details: { path } },
  );
}

/**
 * Checks that `path` (the final file path) can be written: its folder exists and is
 * writable, it is not a symbolic link, and it does not exist unless `overwrite`.
 * Returns true when it exists.
 */
export async function checkDestinationPath(path: string, overwrite: boolean): Promise<boolean> {
  const folder = dirname(path);
  const folderStat = await statOrUndefined(folder);
  if (!folderStat) {
    throw new AppError(
      'DESTINATION_INVALID',
      `The destination folder ${folder} does not exist: create it first (mkdir -p ${JSON.stringify(folder)}) or choose an existing folder.`,
    );
  }
  if (!folderStat.isDirectory()) {
    throw new AppError(
      'DESTINATION_INVALID',
      `${folder} is not a folder: give an existing folder or a file path inside one.`,
    );
  }
  try {
    await access(folder, constants.W_OK);
  } catch {
    throw new AppError(
      'DESTINATION_INVALID',
      `The destination folder ${folder} cannot be written (permission denied): fix its permissions or choose another folder.`,
    );
  }
  const existing = await statOrUndefined(path, false);
  if (existing?.isSymbolicLink()) throw symlinkDestination(path);
  if (existing?.isDirectory()) {
    throw new AppError(
      'DESTINATION_INVALID',
      `The destination ${path} is a folder: give the folder itself (the file name is appended) or another file path.`,
    );
  }
  if (existing && !overwrite) {
    throw new AppError(
      'DESTINATION_EXISTS',
      `The destination ${path} already exists: remove it, choose another destination, or pass --overwrite (overwrite: true in the API) to replace it.`,
      { details: { path } },
    );
  }
  return existing !== undefined;
}

/**
 * Resolves a download request into the final file path. `dest` is a folder (the file
 * name is appended) or a file path whose folder exists. The file name must be a plain
 * name (UNSAFE_FILE_NAME otherwise), so the result never escapes the folder.
 */
export async function resolveDestination(
  fileName: string,
  dest: string,
  overwrite = false,
): Promise<string> {
  validateFileName(fileName);
  if (typeof dest !== 'string' || dest.trim() === '' || dest.includes('\0')) {
    throw new AppError(
      'DESTINATION_INVALID',
      `The destination ${JSON.stringify(dest)} is not a path: give a folder or a file path, e.g. ~/Downloads.`,
    );
  }
  const abs = resolve(dest);
  const st = await statOrUndefined(abs);
  let target: string;
  if (st?.isDirectory()) {
    // A link to a folder is a folder (only the file itself is never a link).
    target = join(abs, fileName);
  } else if (!st && (dest.endsWith('/') || dest.endsWith(sep))) {
    throw new AppError(
      'DESTINATION_INVALID',
      `The destination folder ${abs} does not exist: create it first (mkdir -p ${JSON.stringify(abs)}).`,
    );
  } else {
    target = abs;
  }
  if (target.endsWith('.partial')) {
    throw new AppError(
      'DESTINATION_INVALID',
      `The destination ${target} ends with .partial, the suffix used for downloads in progress: choose another name.`,
    );
  }
  await checkDestinationPath(target, overwrite);
  return target;
}

/** The deduplication id of a download: one download in flight per destination path. */
export function downloadDedupId(dest: string): string {
  return `download:${dest}`;
}
