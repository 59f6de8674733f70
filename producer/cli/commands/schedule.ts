/**
 * `jcds schedule add NAME --cron "0 2 * * *" [--tz ZONE] sync up|down DIR`,
 * `jcds schedule ls`, `jcds schedule rm NAME`: recurring syncs (BullMQ job schedulers).
 * Adding a name that exists replaces its schedule (idempotent, safe in deploy scripts).
 */
import { Argument, type Command } from 'commander';
import { AppError } from '../../../shared/errors.ts';
import type { SyncDirection } from '../../../shared/queues/jobs.ts';
import type { CliContext } from '../context.ts';
import { formatTime, table } from '../format.ts';
import { emitJson } from '../io.ts';
import { producerApi } from '../producer-api.ts';

export function registerSchedule(program: Command, ctx: CliContext): void {
  const schedule = program.command('schedule').description('recurring syncs (cron)');
  schedule
    .command('add')
    .description('add or replace a recurring sync: schedule add NAME --cron "0 2 * * *" sync up DIR')
    .argument('<name>', 'a name for the schedule (letters, digits, - and _)')
    .addArgument(new Argument('<action>', 'what to run').choices(['sync']))
    .addArgument(new Argument('<direction>', 'up or down').choices(['up', 'down']))
    .argument('<dir>', 'the folder')
    .requiredOption('--cron <pattern>', 'cron pattern, 5 fields (minute hour day month weekday) or 6 with seconds')
    .option('--tz <zone>', 'IANA time zone of the pattern, e.g. Europe/Paris (default: UTC)')
    .option('--json', 'print the schedule as JSON on stdout')
    .action(
      async (
        name: string,
        _action: string,
        direction: SyncDirection,
        dir: string,
        opts: { cron: string; tz?: string; json?: boolean },
      ) => {
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
          throw new AppError('USAGE', `The schedule name ${JSON.stringify(name)} is not valid: use 1 to 64 letters, digits, "-" or "_".`);
        }
        const fields = opts.cron.trim().split(/\s+/).length;
        if (fields !== 5 && fields !== 6) {
          throw new AppError('USAGE', `--cron ${JSON.stringify(opts.cron)} has ${fields} field(s): use 5 (minute hour day month weekday), e.g. "0 2 * * *" for 02:00 every day.`);
        }
        if (opts.tz !== undefined && !validZone(opts.tz)) {
          throw new AppError('USAGE', `--tz ${JSON.stringify(opts.tz)} is not a time zone: use an IANA name such as UTC or Europe/Paris.`);
        }
        ctx.config();
        const producer = await ctx.producer();
        const s = await producerApi(producer).addSchedule({
          name,
          cron: opts.cron.trim(),
          ...(opts.tz !== undefined ? { tz: opts.tz } : {}),
          direction,
          dir,
        });
        if (opts.json) emitJson(ctx.io, { event: 'schedule', ...s });
        else ctx.io.err(`Schedule ${s.name}: sync ${s.direction} ${s.dir} at "${s.cron}" (${s.tz ?? 'UTC'}); next run ${formatTime(s.next)}.\n`);
      },
    );
  schedule
    .command('ls')
    .description('list the schedules')
    .option('--json', 'one JSON object per schedule on stdout')
    .action(async (opts: { json?: boolean }) => {
      ctx.config();
      const list = await producerApi(await ctx.producer()).listSchedules();
      if (opts.json) {
        for (const s of list) emitJson(ctx.io, { event: 'schedule', ...s });
        return;
      }
      if (list.length === 0) {
        ctx.io.err('No schedules. Add one: jcds schedule add nightly --cron "0 2 * * *" sync up /srv/packages\n');
        return;
      }
      ctx.io.err(
        table(
          ['NAME', 'CRON', 'TZ', 'SYNC', 'DIR', 'NEXT RUN'],
          list.map(s => [s.name, s.cron, s.tz ?? 'UTC', s.direction, s.dir, formatTime(s.next)]),
        ),
      );
    });
  schedule
    .command('rm')
    .description('remove a schedule (a sync already running goes on)')
    .argument('<name>', 'the schedule name')
    .action(async (name: string) => {
      ctx.config();
      const removed = await producerApi(await ctx.producer()).removeSchedule(name);
      if (!removed) {
        throw new AppError('USAGE', `There is no schedule named ${JSON.stringify(name)}: list them with \`jcds schedule ls\`.`);
      }
      ctx.io.err(`Schedule ${name} removed.\n`);
    });
}

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
