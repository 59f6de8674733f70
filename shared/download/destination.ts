/**
 * Where a download goes. The producer resolves the destination before enqueueing (a
 * folder gets the file name appended; a missing parent folder or an existing file is
 * refused with the fix), and the worker checks the same rules again before it writes,
 * because the file system may have changed while the job waited.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { AppError } from '../errors.ts';
import { validateFileName } from '../files.ts';

/** The file the bytes are written to until they are verified. */
export function partialPath(dest: string): string {
  return `${dest}.partial`;
}

async function statOrUndefined(
  path: string,
): Promise<Awaited<ReturnType<typeof stat>> | undefined> {
  try {
    return await stat(path);
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

/**
 * Checks that `path` (the final file path) can be written: its folder exists and is
 * writable, and it does not exist unless `overwrite`. Returns true when it exists.
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
  const existing = await statOrUndefined(path);
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
