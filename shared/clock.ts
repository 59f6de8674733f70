/**
 * Time as a collaborator: the processors and the upload engine read the time and wait
 * through a Clock, so unit tests can drive them without real waits.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Clock {
  now(): number;
  /** Waits `ms`; an aborted signal rejects with the signal's reason (a lost lock, a shutdown). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await sleep(ms, undefined, signal ? { signal } : {}).catch((err: unknown) => {
      signal?.throwIfAborted();
      throw err;
    });
  },
};
