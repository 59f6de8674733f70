/**
 * Sync schedules: BullMQ job schedulers on the `sync` queue, one per schedule name. They
 * live in Redis, so they survive worker restarts; upserting is idempotent (adding a
 * schedule under an existing name replaces it). Each run is an ordinary sync job whose
 * data names its schedule; a run that overlaps the previous one of the same folder
 * finishes at once as skipped (the sync processor's per-folder lock).
 */
import type { Queue } from 'bullmq';
import { AppError } from '../shared/errors.ts';
import { SYNC_JOB_OPTIONS } from '../shared/queues/defaults.ts';
import type { IfExists, SyncDirection, SyncJobData } from '../shared/queues/jobs.ts';
import { buildSyncJob, checkDirection } from './sync.ts';

export interface ScheduleRequest {
  /** Letters, digits, ".", "_" and "-" (e.g. "nightly-up"). Adding an existing name replaces it. */
  name: string;
  /** Cron: 5 fields (minute hour day month weekday), or 6 with seconds first. */
  cron: string;
  /** IANA time zone, e.g. "Europe/Paris". @defaultValue the worker's local time zone */
  tz?: string;
  direction: SyncDirection;
  dir: string;
  /** sync up: policy for new packages whose name Jamf already has. @defaultValue 'skip' */
  ifExists?: IfExists;
  /** sync up: category of the packages it creates. */
  category?: string;
  /** sync up: follow symbolic links whose real path leaves the folder. @defaultValue false */
  followSymlinks?: boolean;
}

export interface ScheduleInfo {
  name: string;
  cron: string;
  tz?: string;
  direction: SyncDirection;
  dir: string;
  /** Epoch ms of the next run. */
  next?: number;
  /** Runs started so far (0 until the first one). */
  runs?: number;
  /** The sync's options, as each run gets them. */
  ifExists?: IfExists;
  category?: string;
  followSymlinks?: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkScheduleName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new AppError(
      'USAGE',
      `The schedule name ${JSON.stringify(name)} is not valid: use up to 64 letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. nightly-up).`,
    );
  }
  return name;
}

export function checkTimeZone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz;
  } catch {
    throw new AppError(
      'USAGE',
      `The time zone ${JSON.stringify(tz)} is not known: use an IANA name such as "UTC" or "Europe/Paris".`,
    );
  }
}

export function checkCron(cron: unknown): string {
  const fields = typeof cron === 'string' ? cron.trim().split(/\s+/) : [];
  if (typeof cron !== 'string' || fields.length < 5 || fields.length > 6) {
    throw new AppError(
      'USAGE',
      `The cron expression ${JSON.stringify(cron)} is not valid: use 5 fields (minute hour day month weekday, e.g. "0 2 * * *" for 02:00 every night) or 6 with seconds first.`,
    );
  }
  return fields.join(' ');
}

export async function addSchedule(queue: Queue, req: ScheduleRequest): Promise<ScheduleInfo> {
  const name = checkScheduleName(req.name);
  const cron = checkCron(req.cron);
  const tz = req.tz === undefined ? undefined : checkTimeZone(req.tz);
  const data: SyncJobData = await buildSyncJob(
    {
      direction: checkDirection(req.direction),
      dir: req.dir,
      ...(req.ifExists !== undefined ? { ifExists: req.ifExists } : {}),
      ...(req.category !== undefined ? { category: req.category } : {}),
      ...(req.followSymlinks !== undefined ? { followSymlinks: req.followSymlinks } : {}),
    },
    name,
  );
  try {
    await queue.upsertJobScheduler(
      name,
      { pattern: cron, ...(tz ? { tz } : {}) },
      { name: 'sync', data, opts: SYNC_JOB_OPTIONS },
    );
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError(
      'USAGE',
      `The cron expression ${JSON.stringify(cron)} is not valid (${(err as Error).message}): use 5 fields (e.g. "0 2 * * *") or 6 with seconds first.`,
      { cause: err },
    );
  }
  const info = (await listSchedules(queue)).find(s => s.name === name);
  if (!info)
    throw new AppError('INTERNAL', `The schedule ${name} was added but cannot be read back.`);
  return info;
}

export async function listSchedules(queue: Queue): Promise<ScheduleInfo[]> {
  const schedulers = await queue.getJobSchedulers(0, -1, true);
  const out: ScheduleInfo[] = [];
  for (const s of schedulers) {
    const data = s.template?.data as SyncJobData | undefined;
    const name = s.id ?? s.key;
    if (!data || !s.pattern) continue;
    out.push({
      name,
      cron: s.pattern,
      ...(s.tz ? { tz: s.tz } : {}),
      direction: data.direction,
      dir: data.dir,
      ...(s.next ? { next: s.next } : {}),
      ...(data.options?.ifExists ? { ifExists: data.options.ifExists } : {}),
      ...(data.options?.category ? { category: data.options.category } : {}),
      ...(data.options?.followSymlinks ? { followSymlinks: true } : {}),
      // BullMQ counts the run it has scheduled next (1 as soon as the schedule exists):
      // the runs started are one fewer.
      ...(s.iterationCount !== undefined ? { runs: Math.max(0, s.iterationCount - 1) } : {}),
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export async function removeSchedule(queue: Queue, name: string): Promise<void> {
  checkScheduleName(name);
  const removed = await queue.removeJobScheduler(name);
  if (!removed) {
    throw new AppError(
      'USAGE',
      `There is no schedule named ${JSON.stringify(name)}: list them with jcds schedule ls.`,
    );
  }
}
