/**
 * `jcds monitor [--port N] [--host H] [--allow-writes | --read-only]`: the Bull Board
 * dashboard with /healthz and /metrics (worker/monitor/main.ts). It refuses a non-loopback
 * host unless MONITOR_USER and MONITOR_PASSWORD are set, and is read-only unless
 * --allow-writes (or MONITOR_ALLOW_WRITES=1).
 */
import type { Command } from 'commander';
import { intArg, type CliContext } from '../context.ts';

export function registerMonitor(program: Command, ctx: CliContext): void {
  program
    .command('monitor')
    .description('serve the dashboard (Bull Board), /healthz and /metrics')
    .option('--port <n>', 'TCP port (0: any free port)', intArg(0, 65_535), 3000)
    .option(
      '--host <host>',
      'address to listen on; non-loopback needs MONITOR_USER/MONITOR_PASSWORD',
      '127.0.0.1',
    )
    .option(
      '--allow-writes',
      'let the dashboard retry, remove, clean, pause and add jobs (default: read-only; also MONITOR_ALLOW_WRITES=1)',
    )
    .option(
      '--read-only',
      'no changes from the dashboard (the default; overrides MONITOR_ALLOW_WRITES)',
    )
    .action(
      async (opts: { port: number; host: string; readOnly?: boolean; allowWrites?: boolean }) => {
        await ctx.config();
        const { runChild } = await import('../launch.ts');
        const args = [
          '--port',
          String(opts.port),
          '--host',
          opts.host,
          ...(opts.readOnly ? ['--read-only'] : []),
          ...(opts.allowWrites ? ['--allow-writes'] : []),
        ];
        ctx.exitCode = await runChild('worker/monitor/main.ts', args, ctx.io.env, [], {
          watchParent: true,
        });
      },
    );
}
