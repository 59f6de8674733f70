/**
 * Aborting a multipart upload that will not complete (a part failed for good, the file
 * changed, the job failed for good): the children still waiting are removed, the upload
 * and any strays of its key are aborted, and its credentials dropped. Best effort, logged.
 * Each of these is checked against the job's lock right before it (worker/fence.ts): a
 * worker that lost the lock stops with LOCK_LOST and leaves everything to the new owner.
 */
import type { MultipartState } from '../../../shared/queues/jobs.ts';
import { openUpload } from '../../../shared/upload/multipart.ts';
import { unlessLockLost } from '../../fence.ts';
import type { Run } from '../../failure-policy.ts';
import type { UploadDeps, UploadJob } from './job.ts';

export async function abortMultipart(
  deps: Pick<UploadDeps, 'engine' | 'vault'>,
  job: UploadJob,
  mp: MultipartState,
  reason: string,
  { lock, log }: Pick<Run, 'lock' | 'log'>,
): Promise<void> {
  const { engine, vault } = deps;
  await lock.check('remove the part jobs still waiting');
  await job.removeUnprocessedChildren().catch(() => undefined);
  await lock.check('abort the multipart upload');
  try {
    if (await engine.abort(openUpload(mp))) await job.log(`multipart upload aborted: ${reason}`);
  } catch (err) {
    log.warn({ err, jobId: job.id }, 'abort failed');
  }
  try {
    await lock.check('abort stray multipart uploads');
    await engine.abortStrays(mp);
  } finally {
    engine.release(mp);
    await unlessLockLost(vault.delete(mp.vaultKey, lock));
  }
}
