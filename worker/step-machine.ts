/**
 * The step machine of a step job (BullMQ's "process step jobs" pattern): the job's data is
 * a union keyed by `step`, each step is a function of its own checkpoint that returns the
 * next checkpoint or the job's result, and the runner is the one place that persists a
 * checkpoint. A step that must record something before it goes on (a package record it
 * created, the hashes it awaited) saves through the same writer, `save`.
 *
 * A checkpoint is written before the next step runs, so a retry, a stalled-job takeover
 * or a wake-up after the part children finish continues from it.
 */
import { AppError } from '../shared/errors.ts';
import { isLockLost } from './fence.ts';

/**
 * A step's result: the next checkpoint, or the job's result. `undo` takes back what the
 * step made that only this checkpoint records (an upload it created), when the checkpoint
 * is refused because the worker lost the job's lock: it is in no checkpoint, so no other
 * worker can be using it. Not on any other failure of the write: a write whose answer was
 * lost may have been applied.
 */
export type StepOutcome<D, R> = { next: D; undo?: () => Promise<void> } | { done: R };

/** What a step gets besides its checkpoint. */
export interface StepContext<D> {
  /** Persists an intermediate checkpoint of the current step (the runner's writer). */
  save(data: D): Promise<void>;
}

export type StepFn<D extends { step: string }, S extends D['step'], R> = (
  data: Extract<D, { step: S }>,
  ctx: StepContext<D>,
) => Promise<StepOutcome<D, R>>;

export type Steps<D extends { step: string }, R> = { [S in D['step']]: StepFn<D, S, R> };

export interface RunStepsOptions<D> {
  /** The one checkpoint writer, fenced by the job's lock (worker/fence.ts): LOCK_LOST once it is lost. */
  persist(data: D): Promise<void>;
  /** Transitions allowed in one run, a bound against a cycle (default 32). */
  maxTransitions?: number;
}

/** Runs steps from `data` until one returns a result; persists every checkpoint on the way. */
export async function runSteps<D extends { step: string }, R>(
  steps: Steps<D, R>,
  data: D,
  options: RunStepsOptions<D>,
): Promise<R> {
  const max = options.maxTransitions ?? 32;
  const ctx: StepContext<D> = { save: d => options.persist(d) };
  let current = data;
  for (let transitions = 0; ; transitions++) {
    const step = steps[current.step as D['step']] as StepFn<D, D['step'], R> | undefined;
    if (!step)
      throw new AppError(
        'INTERNAL',
        `no step ${JSON.stringify(current.step)} in this job's step machine (job data written by hand?)`,
      );
    const out = await step(current as Extract<D, { step: D['step'] }>, ctx);
    if ('done' in out) return out.done;
    // Checked before the checkpoint is written: at most `max` transitions are persisted.
    if (transitions >= max)
      throw new AppError(
        'INTERNAL',
        `the step machine made more than ${max} transitions in one run`,
      );
    try {
      await options.persist(out.next);
    } catch (err) {
      if (out.undo && isLockLost(err)) await out.undo().catch(() => undefined);
      throw err;
    }
    current = out.next;
  }
}
