/**
 * Local file checks shared by the producer (before enqueueing) and the worker (before
 * and during an upload): exists, regular, readable, non-empty, an extension Jamf
 * accepts (the Jamf file name's and the path's own), a safe name, and unchanged since it
 * was enqueued (its identity: shared/file-identity.ts).
 */
import { constants } from 'node:fs';
import { access, lstat, stat } from 'node:fs/promises';
import { basename, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { AppError } from './errors.ts';
import {
  assertIdentity,
  identityOf,
  type FileIdentity,
  type IdentifiedFile,
} from './file-identity.ts';
import { MAX_OBJECT_SIZE } from './upload/part-plan.ts';

export const ALLOWED_EXTENSIONS = ['pkg', 'mpkg', 'dmg', 'zip'] as const;

/** True when `child` is `parent` or inside it (absolute, normalized paths). Pure. */
export function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Refuses names that would escape a folder or confuse S3 keys and Jamf paths. */
export function validateFileName(name: string): string {
  const problem =
    name.length === 0
      ? 'is empty'
      : name.includes('/') || name.includes('\\')
        ? 'contains a path separator'
        : name === '.' || name === '..' || name.includes('..')
          ? 'contains ".."'
          : name.includes('\0')
            ? 'contains a NUL byte'
            : // eslint-disable-next-line no-control-regex
              /[\u0000-\u001f\u007f]/.test(name)
              ? 'contains a control character'
              : Buffer.byteLength(name) > 255
                ? 'is longer than 255 bytes'
                : undefined;
  if (problem) {
    throw new AppError(
      'UNSAFE_FILE_NAME',
      `The file name ${JSON.stringify(name)} ${problem}: use a plain file name such as "Firefox 128.pkg".`,
    );
  }
  return name;
}

export function validateExtension(name: string): void {
  const ext = extname(name).slice(1).toLowerCase();
  if (!(ALLOWED_EXTENSIONS as readonly string[]).includes(ext)) {
    throw new AppError(
      'UNSUPPORTED_FILE_TYPE',
      `${JSON.stringify(name)} has ${ext ? `the extension .${ext}` : 'no extension'}: Jamf Pro accepts only .pkg, .mpkg, .dmg and .zip. Zip a bundle package or app first.`,
    );
  }
}

/**
 * The path's own extension must be one Jamf accepts too, not only the Jamf file name's:
 * an upload reads package files, never `/etc/shadow` published as `x.pkg` (job data can
 * be written from the dashboard, so the worker checks this again).
 */
export function validatePathExtension(path: string, fileName: string): void {
  const ext = extname(path).slice(1).toLowerCase();
  if ((ALLOWED_EXTENSIONS as readonly string[]).includes(ext)) return;
  throw new AppError(
    'UNSUPPORTED_FILE_TYPE',
    `${path} has ${ext ? `the extension .${ext}` : 'no extension'} (it would be published as ${JSON.stringify(fileName)}): only .pkg, .mpkg, .dmg and .zip files are uploaded, whatever the Jamf file name. Rename the file itself.`,
  );
}

export interface CheckedFile extends FileIdentity {
  path: string;
  fileName: string;
  /** The path is a symbolic link (followed on purpose; shared/file-identity.ts). */
  followSymlink?: true;
}

/** Checks a file to upload; every problem is an AppError naming the fix. */
export async function checkUploadFile(path: string, fileName?: string): Promise<CheckedFile> {
  const abs = resolve(path);
  const name = validateFileName(fileName ?? basename(abs));
  validateExtension(name);
  validatePathExtension(abs, name);
  let st;
  let link: boolean;
  try {
    link = (await lstat(abs)).isSymbolicLink();
    st = await stat(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new AppError('FILE_NOT_FOUND', `${abs} does not exist: check the path.`);
    if (code === 'EACCES')
      throw new AppError(
        'FILE_UNREADABLE',
        `${abs} cannot be read (permission denied): fix its permissions or run as its owner.`,
      );
    throw new AppError('FILE_UNREADABLE', `${abs} cannot be read: ${(err as Error).message}`);
  }
  if (st.isDirectory()) {
    throw new AppError(
      'FILE_NOT_REGULAR',
      `${abs} is a directory: upload the files in it (jcds upload DIR/*.pkg) or sync it (jcds sync up DIR). Bundle packages must be zipped first.`,
    );
  }
  if (!st.isFile())
    throw new AppError(
      'FILE_NOT_REGULAR',
      `${abs} is not a regular file: give the path of a .pkg, .mpkg, .dmg or .zip file.`,
    );
  try {
    await access(abs, constants.R_OK);
  } catch {
    throw new AppError(
      'FILE_UNREADABLE',
      `${abs} cannot be read (permission denied): fix its permissions or run as its owner.`,
    );
  }
  if (st.size === 0)
    throw new AppError(
      'FILE_EMPTY',
      `${abs} is empty (0 bytes): it is not a valid package; rebuild it.`,
    );
  if (st.size > MAX_OBJECT_SIZE) {
    throw new AppError(
      'FILE_TOO_LARGE',
      `${abs} is ${st.size} bytes: more than 10,000 parts of 5 GiB, the most S3 can store.`,
    );
  }
  return {
    path: abs,
    fileName: name,
    ...identityOf(st, await stat(abs, { bigint: true })),
    ...(link ? { followSymlink: true as const } : {}),
  };
}

/**
 * FILE_CHANGED when the file is not the one enqueued any more: another file (device,
 * inode), or rewritten (size, mtime, ctime), or a symbolic link put in its place.
 */
export async function assertUnchanged(file: IdentifiedFile): Promise<void> {
  await assertIdentity(file);
}
