/**
 * Bull Board's adapter for one queue, with what the operator sees (present.ts) applied to
 * every way the board reads jobs:
 * - the formatters Bull Board offers: name (what the job moves, and its bytes), progress
 *   (a percentage the card draws, the bytes beside it), data and return value (redacted);
 * - the job JSON its API sends (a job list, one job, a flow's panel), which no formatter
 *   reaches: failure reasons start with the code and the advice, without stack traces,
 *   redacted; the misleading "N started" badge of step jobs is dropped;
 * - job logs, redacted and without stack frames;
 * - (server.ts then redacts each JSON answer of the API as a whole: the fields none of
 *   this reaches, such as Bull Board's `deduplicationId`, and those of later versions);
 * - the flow view (an upload with its part children), read through BullMQ's FlowProducer:
 *   nodes are named from their data, and a part that failed for good is counted as failed
 *   (BullMQ files a `continueParentOnFailure` child's failure under "ignored", which the
 *   board would show as "1 ignored": to the upload, it is a failure).
 */
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { FlowProducer, Job, JobNode, Queue } from 'bullmq';
import { cardName, displayName, formatProgress, presentJob, presentLog } from './present.ts';
import { redact } from './redact.ts';

type Json = Record<string, unknown>;

export interface BoardQueueOptions {
  readOnly: boolean;
  description: string;
}

export class JcdsQueueAdapter extends BullMQAdapter {
  private readonly queueName: string;

  constructor(queue: Queue, options: BoardQueueOptions) {
    super(queue, {
      readOnlyMode: options.readOnly,
      allowRetries: !options.readOnly,
      description: options.description,
      prefix: '',
    });
    this.queueName = queue.name;
    const name = queue.name;
    this.setFormatter('name', (job: Json) => cardName(name, job));
    this.setFormatter('progress', (progress: unknown) => formatProgress(name, progress));
    this.setFormatter('data', redact);
    this.setFormatter('returnValue', redact);
  }

  /** The job, whose JSON (what the API sends) is the presented one. */
  private present<J extends Job | undefined>(job: J): J {
    if (!job) return job;
    const toJSON = job.toJSON.bind(job);
    const queue = this.queueName;
    job.toJSON = () =>
      presentJob(queue, toJSON() as unknown as Json) as unknown as ReturnType<Job['toJSON']>;
    return job;
  }

  override async getJob(id: string): Promise<Job | undefined> {
    return this.present(await super.getJob(id));
  }

  override async getJobs(
    jobStatuses: Parameters<BullMQAdapter['getJobs']>[0],
    start?: number,
    end?: number,
  ): Promise<Job[]> {
    return (await super.getJobs(jobStatuses, start, end)).map(j => this.present(j));
  }

  override async getJobLogs(id: string): Promise<string[]> {
    return (await super.getJobLogs(id)).map(presentLog);
  }

  override async getFlowProducer(): Promise<FlowProducer | null> {
    const producer = await super.getFlowProducer();
    if (!producer) return null;
    return new Proxy(producer, {
      get(target, prop, receiver) {
        if (prop !== 'getFlow') return Reflect.get(target, prop, receiver) as unknown;
        return async (opts: Parameters<FlowProducer['getFlow']>[0]) => {
          const tree = await target.getFlow(opts);
          presentFlow(tree);
          return tree;
        };
      },
    });
  }
}

/** Names the nodes of a flow tree from their data and counts failed children as failed. */
function presentFlow(node: JobNode | undefined): void {
  const job = node?.job;
  if (!job) return;
  const queue = job.queueName;
  const json = { name: job.name, data: job.data } as Json;
  job.name = displayName(queue, json);
  job.progress = formatProgress(queue, job.progress) as Job['progress'];
  const counts = job.getDependenciesCount.bind(job);
  job.getDependenciesCount = async opts => {
    const c = await counts(opts);
    if (!c.ignored) return c;
    return { ...c, failed: (c.failed ?? 0) + c.ignored, ignored: 0 };
  };
  for (const child of node.children ?? []) presentFlow(child);
}
