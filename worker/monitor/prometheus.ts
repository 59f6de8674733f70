/**
 * /metrics: a prom-client registry whose metrics are read at scrape time (collect
 * callbacks), from Redis, for the whole fleet:
 *
 *   jcds_jobs{queue,state}                        gauge, queue.getJobCounts()
 *   jcds_bytes_uploaded_total / _downloaded_total counters, written by workers (worker/metrics.ts)
 *   jcds_upload_duration_seconds{transport,outcome} histogram, same
 *   jcds_credential_renewals_total                counter, same
 *   jcds_upload_resends_total                     counter, same (bytes Jamf said never landed)
 *   jcds_job_retries_total{queue}                 counter, same
 *   jcds_job_failures_total{queue,code}           counter, same
 *   jcds_redis_up                                 gauge, 1 when Redis answered PING at this scrape
 *   jcds_workers{state,code}                      gauge, worker processes by their health record
 *                                                 (worker/fitness.ts): healthy, or unhealthy
 *                                                 with the code that stopped them
 *
 * One scrape pings Redis once, reads the metrics hash once and the job counts once.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { COUNT_STATES } from './states.ts';
import { withTimeout } from './timeout.ts';
import { readWorkerHealth } from '../fitness.ts';
import {
  DURATION_BUCKETS,
  emptyFleetMetrics,
  readFleetMetrics,
  type FleetMetricsSnapshot,
} from '../metrics.ts';

type DurationLabels = 'transport' | 'outcome';
type HistogramData = Awaited<ReturnType<Histogram<DurationLabels>['get']>>;

/** A histogram whose buckets come from the fleet snapshot instead of local observations. */
class FleetHistogram extends Histogram<DurationLabels> {
  private readonly snapshot: () => Promise<FleetMetricsSnapshot>;
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(name: string, help: string, snapshot: () => Promise<FleetMetricsSnapshot>) {
    super({
      name,
      help,
      labelNames: ['transport', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers: [],
    });
    this.snapshot = snapshot;
    this.metricName = name;
    this.metricHelp = help;
  }

  async getForPromString(): Promise<HistogramData> {
    const snap = await this.snapshot();
    const values: Array<{
      labels: Record<string, string | number>;
      value: number;
      metricName: string;
    }> = [];
    for (const s of snap.uploadDuration) {
      const labels = { transport: s.transport, outcome: s.outcome };
      let cumulative = 0;
      for (const bound of DURATION_BUCKETS) {
        cumulative += s.buckets[String(bound)] ?? 0;
        values.push({
          labels: { ...labels, le: bound },
          value: cumulative,
          metricName: `${this.metricName}_bucket`,
        });
      }
      values.push({
        labels: { ...labels, le: '+Inf' },
        value: s.count,
        metricName: `${this.metricName}_bucket`,
      });
      values.push({ labels, value: s.sum, metricName: `${this.metricName}_sum` });
      values.push({ labels, value: s.count, metricName: `${this.metricName}_count` });
    }
    const metric = {
      name: this.metricName,
      help: this.metricHelp,
      type: 'histogram',
      values,
      aggregator: 'sum',
      collect: () => undefined,
    };
    // The `le` label is reserved for buckets, so the typings cannot express it.
    return metric as unknown as HistogramData;
  }

  override async get(): Promise<HistogramData> {
    return this.getForPromString();
  }
}

const EMPTY: FleetMetricsSnapshot = Object.freeze(emptyFleetMetrics());

export interface Exporter {
  registry: Registry;
  contentType: string;
  /** One scrape: Redis is read afresh (once per kind of data), never from a previous one. */
  metrics(): Promise<string>;
}

export function createExporter(redis: Redis, queues: Queue[]): Exporter {
  const registry = new Registry();
  let cached: Promise<FleetMetricsSnapshot> | undefined;
  let ping: Promise<boolean> | undefined;
  const isUp = (): Promise<boolean> => {
    ping ??= withTimeout(redis.ping(), 2_000).then(
      () => true,
      () => false,
    );
    return ping;
  };
  // One HGETALL per scrape; while Redis is away the fleet metrics are absent (not zero).
  const snapshot = (): Promise<FleetMetricsSnapshot> => {
    cached ??= withTimeout(readFleetMetrics(redis), 3_000).catch(() => EMPTY);
    return cached;
  };

  new Gauge({
    name: 'jcds_redis_up',
    help: '1 when the monitor could reach Redis at this scrape',
    registers: [registry],
    async collect() {
      this.set((await isUp()) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'jcds_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      // The queues' connection queues commands while Redis is away; do not hang the scrape.
      if (!(await isUp())) return;
      for (const q of queues) {
        const counts = await withTimeout(q.getJobCounts(...COUNT_STATES), 3_000).catch(
          () => undefined,
        );
        if (!counts) return; // Redis is away: jcds_redis_up says so, the rest is absent.
        for (const state of COUNT_STATES) this.set({ queue: q.name, state }, counts[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: 'jcds_workers',
    help: 'Worker processes by health: healthy, or unhealthy (stopped taking jobs) with the error code',
    labelNames: ['state', 'code'],
    registers: [registry],
    async collect() {
      this.reset();
      if (!(await isUp())) return;
      const records = await withTimeout(readWorkerHealth(redis), 3_000).catch(() => undefined);
      if (!records) return;
      this.set({ state: 'healthy', code: '' }, 0);
      for (const r of records) {
        this.inc({ state: r.state, code: r.state === 'healthy' ? '' : (r.code ?? 'ERROR') }, 1);
      }
    },
  });
  const simple = (name: string, help: string, pick: (s: FleetMetricsSnapshot) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      async collect() {
        const snap = await snapshot();
        this.reset();
        if (snap !== EMPTY) this.inc(pick(snap));
      },
    });
  };
  simple(
    'jcds_bytes_uploaded_total',
    'Bytes stored in JCDS by the fleet (parts and whole files)',
    s => s.bytesUploaded,
  );
  simple(
    'jcds_bytes_downloaded_total',
    'Bytes fetched from JCDS by the fleet',
    s => s.bytesDownloaded,
  );
  simple(
    'jcds_credential_renewals_total',
    'JCDS temporary S3 credential renewals',
    s => s.credentialRenewals,
  );
  simple(
    'jcds_upload_resends_total',
    'Uploads whose bytes were sent again because Jamf reported they never landed (size 0)',
    s => s.uploadResends,
  );
  new Counter({
    name: 'jcds_job_retries_total',
    help: 'Job attempts that failed and will be retried, per queue',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const [queue, n] of Object.entries(s.retries)) this.inc({ queue }, n);
    },
  });
  new Counter({
    name: 'jcds_job_failures_total',
    help: 'Jobs that failed for good, per queue and error code',
    labelNames: ['queue', 'code'],
    registers: [registry],
    async collect() {
      const s = await snapshot();
      this.reset();
      for (const f of s.failures) this.inc({ queue: f.queue, code: f.code }, f.count);
    },
  });
  registry.registerMetric(
    new FleetHistogram(
      'jcds_upload_duration_seconds',
      'Time from the start of an upload to its verified end, seconds',
      snapshot,
    ),
  );
  let scrape = Promise.resolve('');
  return {
    registry,
    contentType: registry.contentType,
    // Scrapes run one after the other, each with fresh data.
    metrics: () =>
      (scrape = scrape
        .catch(() => '')
        .then(() => {
          ping = undefined;
          cached = undefined;
          return registry.metrics();
        })),
  };
}
