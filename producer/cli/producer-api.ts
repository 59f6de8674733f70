/**
 * The Producer methods the download, sync and schedule commands call, checked at run time
 * while they are being added to producer/producer.ts.
 */
import { AppError } from '../../shared/errors.ts';
import type { SyncDirection } from '../../shared/queues/jobs.ts';
import type { Producer } from '../producer.ts';

export interface DownloadEnqueued {
  jobId: string;
  fileName: string;
  dest: string;
  size?: number;
  created: boolean;
}

export interface SyncEnqueued {
  jobId: string;
  dir: string;
  direction: SyncDirection;
  created?: boolean;
}

export interface ScheduleInfo {
  name: string;
  cron: string;
  tz?: string | undefined;
  direction: SyncDirection;
  dir: string;
  next?: number | undefined;
}

export interface ProducerApi {
  download(req: { fileName: string; dest: string; overwrite: boolean }): Promise<DownloadEnqueued>;
  sync(req: { dir: string; direction: SyncDirection; wait?: boolean }): Promise<SyncEnqueued>;
  addSchedule(req: { name: string; cron: string; tz?: string; direction: SyncDirection; dir: string }): Promise<ScheduleInfo>;
  listSchedules(): Promise<ScheduleInfo[]>;
  removeSchedule(name: string): Promise<boolean>;
}

export function producerApi(producer: Producer): ProducerApi {
  const p = producer as unknown as Partial<ProducerApi>;
  const need = <K extends keyof ProducerApi>(k: K): ProducerApi[K] => {
    const fn = p[k];
    if (typeof fn !== 'function') throw new AppError('INTERNAL', `Producer.${k} is not available in this build.`);
    return (fn as (...a: unknown[]) => unknown).bind(producer) as ProducerApi[K];
  };
  return {
    download: req => need('download')(req),
    sync: req => need('sync')(req),
    addSchedule: req => need('addSchedule')(req),
    listSchedules: () => need('listSchedules')(),
    removeSchedule: name => need('removeSchedule')(name),
  };
}
