/**
 * The step machine (worker/step-machine.ts): steps run in order, every `next` checkpoint
 * is persisted once and before the next step runs, intermediate saves go through the same
 * writer, and an unknown step, a cycle, a failing step or a failing persist stop it.
 */
import { describe, expect, it, vi } from 'vitest';
import { AppError } from '../../../shared/errors.ts';
import { runSteps, type Steps } from '../../../worker/step-machine.ts';

type Data =
  | { step: 'first'; n: number }
  | { step: 'second'; n: number; saved?: boolean }
  | { step: 'third'; n: number };

/** Steps that record what they ran into `events` (shared with the persist fake). */
function recordingSteps(events: string[]): Steps<Data, string> {
  return {
    first: async d => {
      events.push(`step first n=${d.n}`);
      return { next: { step: 'second', n: d.n + 1 } };
    },
    second: async (d, ctx) => {
      events.push(`step second n=${d.n}`);
      await ctx.save({ ...d, saved: true });
      return { next: { step: 'third', n: d.n + 1 } };
    },
    third: async d => {
      events.push(`step third n=${d.n}`);
      return { done: `done at ${d.n}` };
    },
  };
}

describe('runSteps', () => {
  it('runs the steps in order and persists each checkpoint once, before the next step', async () => {
    const events: string[] = [];
    const persist = vi.fn(async (d: Data) => {
      events.push(`persist ${d.step} n=${d.n}${'saved' in d && d.saved ? ' saved' : ''}`);
    });
    const result = await runSteps(recordingSteps(events), { step: 'first', n: 0 }, { persist });
    expect(result).toBe('done at 2');
    expect(events).toEqual([
      'step first n=0',
      'persist second n=1',
      'step second n=1',
      // The step's own save goes through the runner's writer.
      'persist second n=1 saved',
      'persist third n=2',
      'step third n=2',
    ]);
    expect(persist).toHaveBeenCalledTimes(3);
  });

  it('starts from the checkpoint it is given (a retry continues where it left off)', async () => {
    const events: string[] = [];
    const persist = vi.fn(async () => undefined);
    const result = await runSteps(recordingSteps(events), { step: 'third', n: 7 }, { persist });
    expect(result).toBe('done at 7');
    expect(events).toEqual(['step third n=7']);
    expect(persist).not.toHaveBeenCalled();
  });

  it('refuses an unknown step with INTERNAL naming it', async () => {
    // Job data written by hand (read back from Redis as JSON).
    const data: Data = JSON.parse('{"step":"bogus","n":0}');
    const persist = vi.fn(async () => undefined);
    const err = await runSteps(recordingSteps([]), data, { persist }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'INTERNAL' });
    expect((err as AppError).message).toContain('"bogus"');
    expect(persist).not.toHaveBeenCalled();
  });

  it('stops a cycle after maxTransitions with INTERNAL', async () => {
    const calls = { first: 0 };
    const steps: Steps<Data, string> = {
      first: async d => {
        calls.first++;
        return { next: { step: 'first', n: d.n + 1 } };
      },
      second: async () => ({ done: 'never' }),
      third: async () => ({ done: 'never' }),
    };
    const persist = vi.fn(async () => undefined);
    const err = await runSteps(
      steps,
      { step: 'first', n: 0 },
      { persist, maxTransitions: 5 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'INTERNAL' });
    expect((err as AppError).message).toMatch(/more than 5 transitions/);
    // Five transitions are allowed and persisted; the sixth is refused, not persisted.
    expect(persist).toHaveBeenCalledTimes(5);
    expect(persist).toHaveBeenLastCalledWith({ step: 'first', n: 5 });
    expect(calls.first).toBe(6);
  });

  it('allows exactly maxTransitions transitions before a result', async () => {
    const steps: Steps<Data, string> = {
      first: async d => (d.n < 3 ? { next: { step: 'first', n: d.n + 1 } } : { done: `n=${d.n}` }),
      second: async () => ({ done: 'never' }),
      third: async () => ({ done: 'never' }),
    };
    const persist = vi.fn(async () => undefined);
    await expect(
      runSteps(steps, { step: 'first', n: 0 }, { persist, maxTransitions: 3 }),
    ).resolves.toBe('n=3');
    expect(persist).toHaveBeenCalledTimes(3);
  });

  it('uses 32 transitions by default', async () => {
    const steps: Steps<Data, string> = {
      first: async d => ({ next: { step: 'first', n: d.n + 1 } }),
      second: async () => ({ done: 'never' }),
      third: async () => ({ done: 'never' }),
    };
    const persist = vi.fn(async () => undefined);
    await expect(runSteps(steps, { step: 'first', n: 0 }, { persist })).rejects.toThrow(
      /more than 32 transitions/,
    );
    expect(persist).toHaveBeenCalledTimes(32);
  });

  it('lets a step error propagate and persists nothing more', async () => {
    const boom = new AppError('FILE_CHANGED', 'the file changed');
    const third = vi.fn(async () => ({ done: 'never' }));
    const steps: Steps<Data, string> = {
      first: async d => ({ next: { step: 'second', n: d.n + 1 } }),
      second: async () => {
        throw boom;
      },
      third,
    };
    const persist = vi.fn(async () => undefined);
    await expect(runSteps(steps, { step: 'first', n: 0 }, { persist })).rejects.toBe(boom);
    expect(persist).toHaveBeenCalledTimes(1);
    expect(persist).toHaveBeenCalledWith({ step: 'second', n: 1 });
    expect(third).not.toHaveBeenCalled();
  });

  it('stops when a checkpoint cannot be persisted (the next step does not run)', async () => {
    const lost = new Error('Missing lock for job 1');
    const second = vi.fn(async () => ({ done: 'never' }));
    const steps: Steps<Data, string> = {
      first: async d => ({ next: { step: 'second', n: d.n + 1 } }),
      second,
      third: async () => ({ done: 'never' }),
    };
    const persist = vi.fn(async () => {
      throw lost;
    });
    await expect(runSteps(steps, { step: 'first', n: 0 }, { persist })).rejects.toBe(lost);
    expect(persist).toHaveBeenCalledTimes(1);
    expect(second).not.toHaveBeenCalled();
  });

  it('lets a failing intermediate save fail the step', async () => {
    const lost = new Error('Missing lock for job 1');
    const third = vi.fn(async () => ({ done: 'never' }));
    const steps: Steps<Data, string> = {
      first: async () => ({ done: 'never' }),
      second: async (d, ctx) => {
        await ctx.save({ ...d, saved: true });
        return { next: { step: 'third', n: d.n + 1 } };
      },
      third,
    };
    const persist = vi.fn(async () => {
      throw lost;
    });
    await expect(runSteps(steps, { step: 'second', n: 0 }, { persist })).rejects.toBe(lost);
    expect(persist).toHaveBeenCalledTimes(1);
    expect(persist).toHaveBeenCalledWith({ step: 'second', n: 0, saved: true });
    expect(third).not.toHaveBeenCalled();
  });

  it('undoes what a step made when its checkpoint is refused for a lost lock, and only then', async () => {
    const run = async (refusal: Error) => {
      const undo = vi.fn(async () => undefined);
      const steps: Steps<Data, string> = {
        first: async d => ({ next: { step: 'second', n: d.n + 1 }, undo }),
        second: async () => ({ done: 'never' }),
        third: async () => ({ done: 'never' }),
      };
      const persist = vi.fn(async () => {
        throw refusal;
      });
      await expect(runSteps(steps, { step: 'first', n: 0 }, { persist })).rejects.toBe(refusal);
      return undo;
    };
    // The fence refused the write: it was not applied, nobody else knows what the step made.
    expect(await run(new AppError('LOCK_LOST', 'lost the lock of job 1'))).toHaveBeenCalledTimes(1);
    // Any other failure may have been applied (an answer lost on the way): nothing is undone.
    expect(await run(new Error('Connection is closed.'))).not.toHaveBeenCalled();
  });
});
