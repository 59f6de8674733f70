/**
 * Builds a sync job from a request: a direction (up or down) and a folder that exists
 * (resolved to an absolute path: every worker must reach the same folder).
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AppError } from '../shared/errors.ts';
import type { IfExists, SyncDirection, SyncJobData } from '../shared/queues/jobs.ts';

export interface SyncRequest {
  /** up: publish the folder's new and changed packages; down: fetch missing and different JCDS files. */
  direction: SyncDirection;
  dir: string;
  /** Policy for new packages that appear in Jamf meanwhile (changed ones are replaced). @defaultValue 'skip' */
  ifExists?: IfExists;
  /** Category of packages sync up creates. */
  category?: string;
  /**
   * sync up: follow symbolic links whose real path leaves the folder (not by default: such
   * links are reported as SYMLINK_OUTSIDE and not published). @defaultValue false
   */
  followSymlinks?: boolean;
}

export function checkDirection(direction: unknown): SyncDirection {
  if (direction !== 'up' && direction !== 'down') {
    throw new AppError(
      'USAGE',
      `The sync direction is ${JSON.stringify(direction)}: use "up" (folder to Jamf) or "down" (Jamf to folder).`,
    );
  }
  return direction;
}

/** The folder as an absolute path; refuses one that does not exist or is not a folder. */
export async function checkSyncDir(dir: unknown, direction: SyncDirection): Promise<string> {
  if (typeof dir !== 'string' || dir.trim() === '' || dir.includes('\0')) {
    throw new AppError(
      'USAGE',
      `The sync folder ${JSON.stringify(dir)} is not a path: give a folder, e.g. /srv/packages.`,
    );
  }
  const abs = resolve(dir);
  const st = await stat(abs).catch(() => undefined);
  const code =
    direction === 'up' ? (st ? 'FILE_NOT_REGULAR' : 'FILE_NOT_FOUND') : 'DESTINATION_INVALID';
  if (!st)
    throw new AppError(
      code,
      `The sync folder ${abs} does not exist: ${direction === 'up' ? 'check the path' : `create it first (mkdir -p ${JSON.stringify(abs)})`}.`,
    );
  if (!st.isDirectory())
    throw new AppError(code, `${abs} is not a folder: sync ${direction} takes a folder.`);
  return abs;
}

export async function buildSyncJob(req: SyncRequest, schedule?: string): Promise<SyncJobData> {
  const direction = checkDirection(req.direction);
  const dir = await checkSyncDir(req.dir, direction);
  if (req.ifExists !== undefined && !['skip', 'replace', 'fail'].includes(req.ifExists)) {
    throw new AppError(
      'USAGE',
      `ifExists is ${JSON.stringify(req.ifExists)}: use skip, replace or fail.`,
    );
  }
  const options: NonNullable<SyncJobData['options']> = {};
  if (req.ifExists) options.ifExists = req.ifExists;
  if (req.category) options.category = req.category;
  if (req.followSymlinks) {
    if (direction !== 'up')
      throw new AppError('USAGE', '--follow-symlinks applies to sync up only.');
    options.followSymlinks = true;
  }
  return {
    dir,
    direction,
    ...(Object.keys(options).length > 0 ? { options } : {}),
    ...(schedule ? { schedule } : {}),
  };
}
