/**
 * Builds a download job from a request, after checking it: a plain file name
 * (UNSAFE_FILE_NAME), a destination whose folder exists (DESTINATION_INVALID), no
 * existing file unless overwrite (DESTINATION_EXISTS). A folder destination gets the
 * file name appended. Nothing is enqueued when a check fails.
 */
import type { JobsOptions } from 'bullmq';
import { AppError } from '../shared/errors.ts';
import { downloadDedupId, resolveDestination } from '../shared/download/destination.ts';
import type { DownloadJobData } from '../shared/queues/jobs.ts';

export interface DownloadRequest {
  /** The JCDS file name (as `jcds ls` shows it). */
  fileName: string;
  /** A folder (the file name is appended) or a file path in an existing folder. */
  dest: string;
  /** Replace an existing destination file. @defaultValue false */
  overwrite?: boolean;
}

export async function buildDownloadJob(
  req: DownloadRequest,
): Promise<{ data: DownloadJobData; opts: JobsOptions }> {
  if (typeof req !== 'object' || req === null || typeof req.fileName !== 'string') {
    throw new AppError(
      'USAGE',
      'A download needs { fileName, dest }: the JCDS file name and a folder or file path.',
    );
  }
  const overwrite = req.overwrite ?? false;
  if (typeof overwrite !== 'boolean')
    throw new AppError('USAGE', `overwrite is ${JSON.stringify(overwrite)}: use true or false.`);
  const dest = await resolveDestination(req.fileName, req.dest, overwrite);
  return {
    data: { fileName: req.fileName, dest, overwrite },
    // One download in flight per destination: a second request returns the first job.
    opts: { deduplication: { id: downloadDedupId(dest) } },
  };
}
