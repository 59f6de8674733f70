/**
 * Fleet metrics kept in Redis, so that one monitor process can export what every worker
 * process counted (the monitor cannot see worker memory, and workers come and go).
 *
 * Layout: one hash, `{jcds}:metrics` (the `{jcds}` hash tag keeps it in the queues' Redis
 * Cluster slot), fields joined with "|":
 *
 *   bytes_uploaded, bytes_downloaded, credential_renewals,
 *   upload_resends                                            counters
 *   retries|<queue>                                           counter per queue
 *   failures|<queue>|<code>                                   counter per queue and code
 *   upload_duration|<transport>|<outcome>|le|<bound>          histogram bucket (not cumulative)
 *   upload_duration|<transport>|<outcome>|sum / |count        histogram sum (seconds) and count
 *
 * Workers only HINCRBY/HINCRBYFLOAT (fire and forget: a metric never fails or slows a
 * job); `readFleetMetrics` parses the hash back for the exporter.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../shared/logger.ts';
import { QUEUE_PREFIX } from '../shared/queues/names.ts';

export const METRICS_KEY = `${QUEUE_PREFIX}:metrics`;

/** What the processors count (one call per event; never fails or slows a job). */
export interface FleetMetrics {
  bytesUploaded(n: number): void;
  bytesDownloaded(n: number): void;
  uploadDuration(seconds: number, transport: string, outcome: string): void;
  retry(queue: string): void;
  failure(queue: string, code: string): void;
  credentialRenewal(): void;
  /** The bytes of an upload were sent again because Jamf reported they never landed. */
  uploadResent(): void;
}

export const NO_METRICS: FleetMetrics = {
  bytesUploaded: () => undefined,
  bytesDownloaded: () => undefined,
  uploadDuration: () => undefined,
  retry: () => undefined,
  failure: () => undefined,
  credentialRenewal: () => undefined,
  uploadResent: () => undefined,
};

/** Upload duration histogram bounds, seconds (a few seconds to several hours). */
export const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400];

/** Keeps label values to a safe alphabet (they become hash fields and Prometheus labels). */
export function labelValue(v: string): string {
  const clean = v.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
  return clean || 'unknown';
}

/** The bucket a duration falls in: the smallest bound at least as large, or "+Inf". */
export function bucketFor(seconds: number): string {
  const b = DURATION_BUCKETS.find(x => seconds <= x);
  return b === undefined ? '+Inf' : String(b);
}

export class RedisFleetMetrics implements FleetMetrics {
  private readonly redis: Redis;
  private readonly logger: Logger | undefined;
  private warned = false;

  constructor(redis: Redis, logger?: Logger) {
    this.redis = redis;
    this.logger = logger;
  }

  private fail = (err: unknown): void => {
    if (this.warned) return;
    this.warned = true;
    this.logger?.warn({ err }, 'could not record a metric in Redis (metrics may undercount)');
  };

  private incr(field: string, by: number): void {
    if (!Number.isFinite(by) || by <= 0) return;
    this.redis.hincrby(METRICS_KEY, field, Math.round(by)).catch(this.fail);
  }

  bytesUploaded(n: number): void {
    this.incr('bytes_uploaded', n);
  }

  bytesDownloaded(n: number): void {
    this.incr('bytes_downloaded', n);
  }

  uploadDuration(seconds: number, transport: string, outcome: string): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    const base = `upload_duration|${labelValue(transport)}|${labelValue(outcome)}`;
    this.redis
      .multi()
      .hincrby(METRICS_KEY, `${base}|le|${bucketFor(seconds)}`, 1)
      .hincrby(METRICS_KEY, `${base}|count`, 1)
      .hincrbyfloat(METRICS_KEY, `${base}|sum`, seconds)
      .exec()
      .catch(this.fail);
  }

  retry(queue: string): void {
    this.incr(`retries|${labelValue(queue)}`, 1);
  }

  failure(queue: string, code: string): void {
    this.incr(`failures|${labelValue(queue)}|${labelValue(code)}`, 1);
  }

  uploadResent(): void {
    this.incr('upload_resends', 1);
  }

  /** One renewal of JCDS temporary S3 credentials (the vault's renew callback). */
  credentialRenewal(): void {
    this.incr('credential_renewals', 1);
  }
}

export interface DurationSeries {
  transport: string;
  outcome: string;
  /** Non-cumulative counts per bound ("+Inf" included). */
  buckets: Record<string, number>;
  sum: number;
  count: number;
}

export interface FleetMetricsSnapshot {
  bytesUploaded: number;
  bytesDownloaded: number;
  credentialRenewals: number;
  uploadResends: number;
  retries: Record<string, number>;
  failures: Array<{ queue: string; code: string; count: number }>;
  uploadDuration: DurationSeries[];
}

/** A snapshot with nothing counted. */
export function emptyFleetMetrics(): FleetMetricsSnapshot {
  return {
    bytesUploaded: 0,
    bytesDownloaded: 0,
    credentialRenewals: 0,
    uploadResends: 0,
    retries: {},
    failures: [],
    uploadDuration: [],
  };
}

/** Parses the metrics hash (as HGETALL returns it). */
export function parseFleetMetrics(hash: Record<string, string>): FleetMetricsSnapshot {
  const snap = emptyFleetMetrics();
  const series = new Map<string, DurationSeries>();
  for (const [field, raw] of Object.entries(hash)) {
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    const parts = field.split('|');
    if (field === 'bytes_uploaded') snap.bytesUploaded = value;
    else if (field === 'bytes_downloaded') snap.bytesDownloaded = value;
    else if (field === 'credential_renewals') snap.credentialRenewals = value;
    else if (field === 'upload_resends') snap.uploadResends = value;
    else if (parts[0] === 'retries' && parts.length === 2) snap.retries[parts[1]!] = value;
    else if (parts[0] === 'failures' && parts.length === 3) {
      snap.failures.push({ queue: parts[1]!, code: parts[2]!, count: value });
    } else if (parts[0] === 'upload_duration' && parts.length >= 4) {
      const key = `${parts[1]}|${parts[2]}`;
      let s = series.get(key);
      if (!s) {
        s = { transport: parts[1]!, outcome: parts[2]!, buckets: {}, sum: 0, count: 0 };
        series.set(key, s);
      }
      if (parts[3] === 'le' && parts[4] !== undefined) s.buckets[parts[4]] = value;
      else if (parts[3] === 'sum') s.sum = value;
      else if (parts[3] === 'count') s.count = value;
    }
  }
  snap.uploadDuration = [...series.values()];
  return snap;
}

export async function readFleetMetrics(redis: Redis): Promise<FleetMetricsSnapshot> {
  return parseFleetMetrics(await redis.hgetall(METRICS_KEY));
}
