/** `jcds worker [--concurrency N]`: runs one worker process (worker/main.ts) until a signal. */
import type { Command } from 'commander';
import { intArg, type CliContext } from '../context.ts';

export function registerWorker(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description(
      'run a worker process (needs the Jamf variables and JCDS_FLEET_SECRET); Ctrl-C drains it',
    )
    .option(
      '--concurrency <n>',
      'upload, download and sync jobs at once (default JCDS_WORKER_CONCURRENCY or 4)',
      intArg(1, 1000),
    )
    .option(
      '--allow-eviction',
      "start even if Redis' maxmemory-policy is not noeviction (jobs may be lost; as JCDS_ALLOW_REDIS_EVICTION=1)",
    )
    .action(async (opts: { concurrency?: number; allowEviction?: boolean }) => {
      // Fail here with the usual advice rather than in the child.
      const config = await ctx.config({ requireJamf: true });
      const [{ runChild }, { workerNodeFlags }] = await Promise.all([
        import('../launch.ts'),
        import('../../../shared/worker-flags.ts'),
      ]);
      const env = {
        ...ctx.io.env,
        ...(opts.concurrency !== undefined
          ? { JCDS_WORKER_CONCURRENCY: String(opts.concurrency) }
          : {}),
        ...(opts.allowEviction ? { JCDS_ALLOW_REDIS_EVICTION: '1' } : {}),
      };
      ctx.exitCode = await runChild(
        'worker/main.ts',
        [],
        env,
        workerNodeFlags(config.workerHeapMib),
        // The worker ends when this CLI dies, even by SIGKILL (no orphaned worker).
        { watchParent: true },
      );
    });
}
