/**
 * Queue names and the key prefix. Every queue shares the `{jcds}` hash tag so that a
 * parent upload and its part children live in one Redis Cluster slot (BullMQ flows
 * across queues need that; bullmq #2589).
 */
export const QUEUE_PREFIX = '{jcds}';

export const QUEUES = {
  upload: 'upload',
  uploadPart: 'upload-part',
  download: 'download',
  sync: 'sync',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export const ALL_QUEUES: QueueName[] = Object.values(QUEUES);

/**
 * The deduplication id of an upload: one in-flight upload per JCDS file name, whoever
 * enqueues it (a producer, or a sync job in a worker).
 */
export function uploadDedupId(fileName: string): string {
  return `upload:${fileName}`;
}

/**
 * The ids and keys of one upload's helpers, built here and parsed here only. The upload's
 * part children are `<uploadJobId>-p<N>` and its hash job (a job beside the parts, not a
 * child: shared/upload/hash-job.ts) is `<uploadJobId>-hash`, both in the part queue.
 */
export function hashJobId(uploadJobId: string): string {
  return `${uploadJobId}-hash`;
}

/**
 * The id of part `partNumber` of an upload. `round` counts the times the bytes were sent
 * again (Jamf reported they never landed): each round is a new multipart upload with
 * part jobs of its own; round 0 keeps the plain form.
 */
export function partJobId(uploadJobId: string, partNumber: number, round = 0): string {
  return round > 0 ? `${uploadJobId}-r${round}-p${partNumber}` : `${uploadJobId}-p${partNumber}`;
}

/**
 * The part number (and round) of a part job, from its id or from a BullMQ child key
 * (`{jcds}:upload-part:<id>`); undefined for anything that is not a part job.
 */
export function parsePartJobId(
  idOrKey: string,
): { uploadJobId: string; partNumber: number; round: number } | undefined {
  const id = idOrKey.split(':').pop() ?? idOrKey;
  const m = /^(.+?)(?:-r(\d+))?-p(\d+)$/.exec(id);
  return m ? { uploadJobId: m[1]!, partNumber: Number(m[3]), round: Number(m[2] ?? 0) } : undefined;
}

/**
 * Job names: what a job moves, for people (the dashboard's cards, `jcds status`). They are
 * free text, set when a job is added; no processor dispatches on a name (a part job is told
 * from the hash job by its data).
 */
export function uploadJobName(fileName: string): string {
  return `upload ${fileName}`;
}

/** `part 3/6 of Office.pkg`, and `(resend 1)` for a round that sends the bytes again. */
export function partJobName(
  fileName: string,
  partNumber: number,
  partCount?: number,
  round = 0,
): string {
  const of = partCount === undefined ? `${partNumber}` : `${partNumber}/${partCount}`;
  return `part ${of} of ${fileName}${round > 0 ? ` (resend ${round})` : ''}`;
}

export function hashJobName(fileName: string): string {
  return `hash of ${fileName}`;
}

export function downloadJobName(fileName: string): string {
  return `download ${fileName}`;
}

export function syncJobName(direction: string, dir: string, schedule?: string): string {
  return `sync ${direction} ${dir}${schedule ? ` (schedule ${schedule})` : ''}`;
}

/** The names jobs were given before they were named after what they move. */
const GENERIC_JOB_NAMES = new Set(['upload', 'part', 'hash', 'download', 'sync', '']);

/**
 * A job's name for display: its own, or, for a job added with a generic name (`upload`,
 * `part`, `hash`, `download`, `sync`: jobs enqueued before names said what they move, and
 * scheduled sync runs), one built from its data.
 */
export function jobDisplayName(queue: string, name: string | undefined, data: unknown): string {
  if (name && !GENERIC_JOB_NAMES.has(name)) return name;
  const d = typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
  const str = (k: string): string | undefined => (typeof d[k] === 'string' ? d[k] : undefined);
  const fileName = str('fileName');
  if (queue === QUEUES.sync && str('dir'))
    return syncJobName(str('direction') ?? '', str('dir')!, str('schedule'));
  if (fileName === undefined) return name || queue;
  if (queue === QUEUES.uploadPart) {
    return typeof d['partNumber'] === 'number'
      ? partJobName(fileName, d['partNumber'])
      : hashJobName(fileName);
  }
  if (queue === QUEUES.download) return downloadJobName(fileName);
  if (queue === QUEUES.upload) return uploadJobName(fileName);
  return name || queue;
}

/** The vault entry holding an upload's temporary S3 credentials. */
export function uploadVaultKey(uploadJobId: string): string {
  return `upload-${uploadJobId}`;
}

/** The Redis hash of a job (BullMQ's layout: prefix, queue, id). */
export function jobKey(queue: QueueName, jobId: string): string {
  return `${QUEUE_PREFIX}:${queue}:${jobId}`;
}

/** The job states worth counting (BullMQ v6 has no `paused` state). */
export const COUNT_STATES = [
  'waiting',
  'prioritized',
  'active',
  'waiting-children',
  'delayed',
  'completed',
  'failed',
] as const;
