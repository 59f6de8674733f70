/**
 * /metrics: a prom-client registry whose metrics are read at scrape time (collect
 * callbacks), from Redis, for the whole fleet:
 *
 *   jcds_jobs{queue,state}                        gauge, queue.getJobCounts()
 *   jcds_bytes_uploaded_total / _downloaded_total counters, written by workers (worker/metrics.ts)
 *   jcds_upload_duration_seconds{transport,outcome} histogram, same
 *   jcds_credential_renewals_total                counter, same
 *   jcds_job_retries_total{queue}                 counter, same
 *   jcds_job_failures_total{queue,code}           counter, same
 *   jcds_redis_up                                 gauge, 1 when the scrape could read Redis
 *
 * One scrape reads the metrics hash once (memoised for a second) and the job counts once.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { COUNT_STATES } from './states.ts';
import { DURATION_BUCKETS, readFleetMetrics, type FleetMetricsSnapshot } from '../metrics.ts';

type DurationLabels = 'transport' | 'outcome';

/** A histogram whose buckets come from the fleet snapshot instead of local observations. */
class FleetHistogram extends Histogram<DurationLabels> {
  private readonly snapshot: () => Promise<FleetMetricsSnapshot>;

  constructor(name: string, help: string, snapshot: () => Promise<FleetMetricsSnapshot>) {
    super({ name, help, labelNames: ['transport', 'outcome'], buckets: DURATION_BUCKETS, registers: [] });
    this.snapshot = snapshot;
  }

  async getForPromString() {
    const snap = await this.snapshot();
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const s of snap.uploadDuration) {
      const labels = { transport: s.transport, outcome: s.outcome };
      let cumulative = 0;
      for (const bound of DURATION_BUCKETS) {
        cumulative += s.buckets[String(bound)] ?? 0;
        values.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { ...labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram' as const, values, aggregator: 'sum' as const };
  }

  override async get() {
    return this.getForPromString();
  }

  private get name(): string {
    return 'jcds_upload_duration_seconds';
  }

  private get help(): string {
    return 'Time from the start of an upload to its verified end, seconds';
  }
}

export function createRegistry(redis: Redis, queues: Queue[]): Registry {
  const registry = new Registry();
  let cached: { at: number; value: Promise<FleetMetricsSnapshot> } | undefined;
  const snapshot = (): Promise<FleetMetricsSnapshot> => {
    if (!cached || Date.now() - cached.at > 1_000) {
      const value = readFleetMetrics(redis);
      value.catch(() => (cached = undefined));
      cached = { at: Date.now(), value };
    }
    return cached.value;
  };

  const redisUp = new Gauge({ name: 'jcds_redis_up', help: '1 when the monitor could read Redis at this scrape', registers: [registry] });
  new Gauge({
    name: 'jcds_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      try {
        for (const q of queues) {
          const counts = await q.getJobCounts(...COUNT_STATES);
          for (const state of COUNT_STATES) this.set({ queue: q.name, state }, counts[state] ?? 0);
        }
        redisUp.set(1);
      } catch (err) {
        redisUp.set(0);
        throw err;
      }
    },
  });
  const simple = (name: string, help: string, pick: (s: FleetMetricsSnapshot) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      async collect() {
        const v = pick(await snapshot());
        this.reset();
        this.inc(v);
      },
    });
  };
  simple('jcds_bytes_uploaded_total', 'Bytes stored in JCDS by the fleet (parts and whole files)', s => s.bytesUploaded);
  simple('jcds_bytes_downloaded_total', 'Bytes fetched from JCDS by the fleet', s => s.bytesDownloaded);
  simple('jcds_credential_renewals_total', 'JCDS temporary S3 credential renewals', s => s.credentialRenewals);
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
  registry.registerMetric(new FleetHistogram('jcds_upload_duration_seconds', '', snapshot));
  return registry;
}
