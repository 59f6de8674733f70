/**
 * Aborting a multipart upload that will not complete (a part failed for good, the file
 * changed, the job failed for good): the children still waiting are removed, the upload
 * and any strays of its key are aborted, and its credentials dropped. Best effort, logged.
 */
import type { Logger } from '../../../shared/logger.ts';
import type { MultipartState } from '../../../shared/queues/jobs.ts';
import { openUpload } from '../../../shared/upload/multipart.ts';
import type { UploadDeps, UploadJob } from './job.ts';

export async function abortMultipart(
  deps: Pick<UploadDeps, 'engine' | 'vault'>,
  job: UploadJob,
  mp: MultipartState,
  reason: string,
  log: Logger,
): Promise<void> {
  const { engine, vault } = deps;
  await job.removeUnprocessedChildren().catch(() => undefined);
  try {
    if (await engine.abort(openUpload(mp))) await job.log(`multipart upload aborted: ${reason}`);
  } catch (err) {
    log.warn({ err, jobId: job.id }, 'abort failed');
  }
  try {
    await engine.abortStrays(mp);
  } finally {
    engine.release(mp);
    await vault.delete(mp.vaultKey).catch(() => undefined);
  }
}
