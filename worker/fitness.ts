/**
 * Whether this worker process can do the fleet's jobs, and what it tells the fleet.
 *
 * Some failures are the worker's, not the job's: Jamf refusing the worker's credentials
 * (JAMF_AUTH_FAILED: the API client's secret was rotated, the client disabled) or a fleet
 * secret the fleet no longer uses (FLEET_SECRET_MISMATCH: a rotation ran without this
 * worker). A job that met one must not fail, since a healthy worker would publish it. So the
 * failure policy (worker/failure-policy.ts) hands the job back to its queue without using an
 * attempt, and calls `lost`, which:
 * - pauses every BullMQ worker of the process at once (jobs in flight go on; one that meets
 *   the same failure is handed back too);
 * - logs one error line naming the code, what to fix, and that the worker takes no more jobs;
 * - marks the process unhealthy in its health record in Redis.
 *
 * The process then stays up, paused, and never retries the credentials by itself: a user
 * account with a wrong password would be locked out by Jamf, and a supervisor restarting it
 * would meet the same check at start (exit 3, worker/main.ts). Stopping it (SIGTERM) or
 * restarting it with the right configuration is the fix; the health record says which
 * process to look at.
 *
 * Health records: one key per worker process, `{jcds}:worker-health:<host>:<pid>`, a JSON
 * `WorkerHealthRecord` refreshed every HEALTH_REFRESH_MS with a TTL of HEALTH_TTL_MS (a
 * killed process's record expires on its own) and deleted on a clean shutdown.
 * `readWorkerHealth` lists them (for /healthz, /metrics or `jcds status`).
 */
import { hostname } from 'node:os';
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { errorCode, formatReason } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { QUEUE_PREFIX } from '../shared/queues/names.ts';

/** Failures that are this worker's configuration, never the job's. */
export const WORKER_FAULTS: ReadonlySet<string> = new Set([
  'JAMF_AUTH_FAILED',
  'FLEET_SECRET_MISMATCH',
]);

export function isWorkerFault(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && WORKER_FAULTS.has(code);
}

export const HEALTH_KEY_PREFIX = `${QUEUE_PREFIX}:worker-health:`;
export const HEALTH_TTL_MS = 30_000;
export const HEALTH_REFRESH_MS = 10_000;

export interface WorkerHealthRecord {
  state: 'healthy' | 'unhealthy';
  host: string;
  pid: number;
  /** ISO date of the last change of state. */
  since: string;
  /** When unhealthy: the code that made it so, and the redacted reason. */
  code?: string;
  reason?: string;
  /** When unhealthy: what to do. */
  fix?: string;
}

const FIX: Record<string, string> = {
  JAMF_AUTH_FAILED:
    'Jamf Pro no longer accepts this worker’s credentials: set the current JAMF_CLIENT_ID/JAMF_CLIENT_SECRET (or JAMF_USERNAME/JAMF_PASSWORD) and restart it.',
  FLEET_SECRET_MISMATCH:
    'The fleet’s secret was rotated without this worker: set JCDS_FLEET_SECRET to the new one and restart it.',
};

/** What the failure policy needs of the fitness of its worker process. */
export interface FitnessHook {
  /** False once `lost` was called: a job that still arrives is handed back untouched. */
  readonly healthy: boolean;
  /** The worker cannot do jobs any more (idempotent). */
  lost(err: unknown): void;
}

export interface WorkerFitnessOptions {
  redis: Redis;
  logger: Logger;
  /** Default `<hostname>:<pid>`. */
  id?: string;
}

export class WorkerFitness implements FitnessHook {
  private readonly redis: Redis;
  private readonly logger: Logger;
  readonly key: string;
  private workers: Worker[] = [];
  private record: WorkerHealthRecord;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: WorkerFitnessOptions) {
    this.redis = options.redis;
    this.logger = options.logger;
    this.key = `${HEALTH_KEY_PREFIX}${options.id ?? `${hostname()}:${process.pid}`}`;
    this.record = {
      state: 'healthy',
      host: hostname(),
      pid: process.pid,
      since: new Date().toISOString(),
    };
  }

  get healthy(): boolean {
    return this.record.state === 'healthy';
  }

  /** The BullMQ workers `lost` pauses. */
  attach(workers: Worker[]): void {
    this.workers = workers;
  }

  /** Writes the health record and keeps it fresh until `close`. */
  start(): void {
    void this.publish();
    this.timer = setInterval(() => void this.publish(), HEALTH_REFRESH_MS);
    this.timer.unref();
  }

  private async publish(): Promise<void> {
    await this.redis
      .set(this.key, JSON.stringify(this.record), 'PX', HEALTH_TTL_MS)
      .catch((err: unknown) => this.logger.debug({ err }, 'could not write the health record'));
  }

  lost(err: unknown): void {
    if (!this.healthy) return;
    const code = errorCode(err) ?? 'ERROR';
    const fix =
      FIX[code] ??
      'Fix this worker’s configuration and restart it; its jobs went back to the queue.';
    this.record = {
      ...this.record,
      state: 'unhealthy',
      since: new Date().toISOString(),
      code,
      reason: formatReason(err),
      fix,
    };
    for (const w of this.workers) {
      w.pause(true).catch((e: unknown) => this.logger.warn({ err: e }, 'could not pause a worker'));
    }
    this.logger.error(
      { code, reason: this.record.reason, healthKey: this.key },
      `worker unhealthy: it takes no more jobs, and the jobs it held went back to the queue for the other workers. ${fix}`,
    );
    void this.publish();
  }

  /** Stops refreshing and removes the record (a clean shutdown). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.redis.del(this.key).catch(() => undefined);
  }
}

/** Every worker process's health record (SCAN; a few keys per process at most). */
export async function readWorkerHealth(redis: Redis): Promise<WorkerHealthRecord[]> {
  const out: WorkerHealthRecord[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${HEALTH_KEY_PREFIX}*`, 'COUNT', 200);
    cursor = next;
    if (keys.length === 0) continue;
    const values = await redis.mget(...keys);
    for (const v of values) {
      if (v === null) continue;
      try {
        out.push(JSON.parse(v) as WorkerHealthRecord);
      } catch {
        // A record being rewritten: skipped this time.
      }
    }
  } while (cursor !== '0');
  return out;
}
