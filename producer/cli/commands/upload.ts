/**
 * `jcds upload FILE... [--wait] [--json] [--if-exists skip|replace|fail] [--category NAME]
 * [--priority N] [--package-priority N]`: validates every file first (nothing is enqueued
 * when one is bad), enqueues them in bulk, and with --wait follows them to the end.
 *
 * The action imports what it needs when it runs (the file checks, the producer: ioredis
 * and BullMQ's Queue), so that defining the command for `jcds --help` loads none of it.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { AppError, errorCode, type ErrorCode } from '../../../shared/errors.ts';
import type { IfExists } from '../../../shared/queues/jobs.ts';
import { intArg, type CliContext } from '../context.ts';
import type { EnqueuedJob } from '../enqueued.ts';

interface UploadOptions {
  wait?: boolean;
  json?: boolean;
  ifExists: IfExists;
  category?: string;
  priority?: number;
  packagePriority?: number;
}

export function registerUpload(program: Command, ctx: CliContext): void {
  program
    .command('upload')
    .description('publish packages to Jamf Pro: one durable upload job per file')
    .argument('<file...>', '.pkg, .mpkg, .dmg or .zip files (hundreds at once are fine)')
    .option('--wait', 'follow the uploads until they end (progress on stderr)')
    .option('--json', 'print NDJSON on stdout: one object per job event, then a summary')
    .addOption(
      new Option('--if-exists <policy>', 'when Jamf already has this file name')
        .choices(['skip', 'replace', 'fail'])
        .default('skip'),
    )
    .option('--category <name>', 'the Jamf Pro category of the packages (must exist)')
    .option('--priority <n>', 'queue priority: 1 is served first', intArg(1, 2_097_152))
    .option(
      '--package-priority <n>',
      'the Jamf Pro install priority of the packages',
      intArg(1, 20),
    )
    .action(async (files: string[], opts: UploadOptions) => {
      await ctx.config();
      await checkAll(files);
      const [producer, { followAndReport, printEnqueued }] = await Promise.all([
        ctx.producer(),
        import('../enqueued.ts'),
      ]);
      const pkg = {
        ...(opts.category !== undefined ? { category: opts.category } : {}),
        ...(opts.packagePriority !== undefined ? { priority: opts.packagePriority } : {}),
      };
      const enqueued = await producer.uploadMany(
        files.map(path => ({
          path,
          ifExists: opts.ifExists,
          package: pkg,
          ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
        })),
      );
      const jobs: EnqueuedJob[] = enqueued.map(e => ({
        queue: producer.queues.upload,
        jobId: e.jobId,
        label: e.fileName,
        size: e.size,
        created: e.created,
      }));
      const json = Boolean(opts.json);
      printEnqueued(ctx, jobs, json);
      await followAndReport(ctx, jobs, { json, wait: Boolean(opts.wait) });
    });
}

/**
 * A folder is refused before the file checks: they would call it a file without an
 * extension, where the fix is `jcds sync up`.
 */
async function checkNotFolder(path: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (st?.isDirectory()) {
    const abs = resolve(path);
    throw new AppError(
      'FILE_NOT_REGULAR',
      `${abs} is a folder: publish a folder with \`jcds sync up ${JSON.stringify(abs)}\` (new and changed packages), or upload the files in it (jcds upload ${JSON.stringify(abs)}/*.pkg).`,
    );
  }
}

/**
 * Checks every file before connecting anywhere, and reports every bad one at once (a
 * batch of hundreds should not fail one file per run). Each problem keeps its own code,
 * in the text and in --json's `details.problems`; the error's code is the first bad
 * file's, so a missing file is FILE_NOT_FOUND for people and for programs alike.
 */
async function checkAll(files: string[]): Promise<void> {
  const { checkUploadFile } = await import('../../../shared/files.ts');
  const results = await Promise.allSettled(
    files.map(async f => {
      await checkNotFolder(f);
      return checkUploadFile(f);
    }),
  );
  const problems = results.flatMap((r, i) =>
    r.status === 'rejected' ? [{ path: files[i]!, err: r.reason as unknown }] : [],
  );
  if (problems.length === 0) return;
  if (problems.length === 1) throw problems[0]!.err;
  const codeOf = (err: unknown): ErrorCode => (errorCode(err) as ErrorCode | undefined) ?? 'USAGE';
  const lines = problems.map(p => `  - [${codeOf(p.err)}] ${(p.err as Error).message}`).join('\n');
  throw new AppError(
    codeOf(problems[0]!.err),
    `${problems.length} of ${files.length} files cannot be uploaded; nothing was enqueued:\n${lines}`,
    {
      details: {
        problems: problems.map(p => ({
          path: resolve(p.path),
          code: codeOf(p.err),
          message: (p.err as Error).message,
        })),
      },
    },
  );
}
