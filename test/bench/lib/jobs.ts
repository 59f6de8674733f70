/**
 * Watches queue events and records, per job id, when it reached the `verifying` phase
 * (the bytes are stored in S3; what follows is the package record and Jamf's hash check)
 * and when it completed or failed. Events are kept from the moment the watcher starts, so
 * a job that finishes before anyone waits for it is not missed.
 */
import { performance } from 'node:perf_hooks';
import type { QueueEvents } from 'bullmq';

export interface JobTimes {
  storedAt?: number;
  doneAt?: number;
  failedReason?: string;
  returnvalue?: unknown;
}

export class JobWatcher {
  private readonly seen = new Map<string, JobTimes>();
  private readonly waiters = new Map<string, Array<() => void>>();
  private readonly events: QueueEvents;
  private readonly onProgress: (a: { jobId: string; data: unknown }) => void;
  private readonly onCompleted: (a: { jobId: string; returnvalue: unknown }) => void;
  private readonly onFailed: (a: { jobId: string; failedReason: string }) => void;

  constructor(events: QueueEvents) {
    this.events = events;
    this.onProgress = ({ jobId, data }) => {
      const phase = (data as { phase?: string } | undefined)?.phase;
      if (phase === 'verifying') this.entry(jobId).storedAt ??= performance.now();
    };
    this.onCompleted = ({ jobId, returnvalue }) => {
      const e = this.entry(jobId);
      e.doneAt = performance.now();
      try {
        e.returnvalue = typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue;
      } catch {
        e.returnvalue = returnvalue;
      }
      this.wake(jobId);
    };
    this.onFailed = ({ jobId, failedReason }) => {
      const e = this.entry(jobId);
      e.doneAt = performance.now();
      e.failedReason = failedReason;
      this.wake(jobId);
    };
    events.on('progress', this.onProgress);
    events.on('completed', this.onCompleted);
    events.on('failed', this.onFailed);
  }

  private entry(jobId: string): JobTimes {
    let e = this.seen.get(jobId);
    if (!e) {
      e = {};
      this.seen.set(jobId, e);
    }
    return e;
  }

  private wake(jobId: string): void {
    for (const w of this.waiters.get(jobId) ?? []) w();
    this.waiters.delete(jobId);
  }

  /** What was seen of a job so far (performance.now() times), if anything. */
  times(jobId: string): JobTimes | undefined {
    return this.seen.get(jobId);
  }

  /** Resolves when the job completed; throws with BullMQ's reason when it failed. */
  async wait(jobId: string, timeoutMs = 30 * 60_000): Promise<JobTimes> {
    const e = this.entry(jobId);
    if (e.doneAt === undefined) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`job ${jobId} did not finish in ${timeoutMs} ms`)),
          timeoutMs,
        );
        const list = this.waiters.get(jobId) ?? [];
        list.push(() => {
          clearTimeout(timer);
          resolve();
        });
        this.waiters.set(jobId, list);
      });
    }
    if (e.failedReason !== undefined) throw new Error(`job ${jobId} failed: ${e.failedReason}`);
    return e;
  }

  close(): void {
    this.events.off('progress', this.onProgress);
    this.events.off('completed', this.onCompleted);
    this.events.off('failed', this.onFailed);
  }
}
