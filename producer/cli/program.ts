/**
 * The `jcds` commander program. `run(argv, io)` parses, runs one command and returns the
 * exit code; it never ends the process itself (main.ts does, through the exit seam), so
 * unit tests can run commands and check codes and output.
 */
import { Command, CommanderError } from 'commander';
import { errorJson, formatError } from './advice.ts';
import { registerDoctor } from './commands/doctor.ts';
import { registerDownload } from './commands/download.ts';
import { registerLs } from './commands/ls.ts';
import { registerMonitor } from './commands/monitor.ts';
import { registerRetry } from './commands/retry.ts';
import { registerSchedule } from './commands/schedule.ts';
import { registerStatus } from './commands/status.ts';
import { registerSync } from './commands/sync.ts';
import { registerUpload } from './commands/upload.ts';
import { registerVault } from './commands/vault.ts';
import { registerWorker } from './commands/worker.ts';
import { createContext, type CliContext } from './context.ts';
import { EXIT, exitCodeFor } from './exit.ts';
import { emitJson, processIo, type CliIo } from './io.ts';

export function buildProgram(ctx: CliContext): Command {
  const program = new Command()
    .name('jcds')
    .description(
      'Publish macOS packages to Jamf Pro (JCDS) through a fleet of durable BullMQ workers.\n' +
        'Producer commands need only REDIS_URL; workers need the Jamf variables (see README.md).',
    )
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError('(run `jcds <command> --help` for the usage)')
    .configureOutput({
      writeOut: s => ctx.io.err(s),
      writeErr: s => ctx.io.err(s),
    });
  registerUpload(program, ctx);
  registerDownload(program, ctx);
  registerSync(program, ctx);
  registerSchedule(program, ctx);
  registerStatus(program, ctx);
  registerRetry(program, ctx);
  registerLs(program, ctx);
  registerWorker(program, ctx);
  registerMonitor(program, ctx);
  registerDoctor(program, ctx);
  registerVault(program, ctx);
  return program;
}

/** Runs `jcds` with `argv` (without node and the script path); resolves to the exit code. */
export async function run(
  argv: string[],
  io: CliIo = processIo(),
  signal?: AbortSignal,
): Promise<number> {
  const controller = new AbortController();
  signal?.addEventListener('abort', () => controller.abort(), { once: true });
  const ctx = createContext(io, controller.signal);
  const program = buildProgram(ctx);
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end through the same path, with exit code 0.
      if (err.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    const code = exitCodeFor(err);
    if (json) emitJson(io, errorJson(err, code));
    io.err(formatError(err, io.env));
    return code;
  } finally {
    await ctx.close().catch(() => undefined);
  }
}
