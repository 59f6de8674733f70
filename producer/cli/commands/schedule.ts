/**
 * `jcds schedule add NAME --cron "0 2 * * *" [--tz ZONE] sync up|down DIR`,
 * `jcds schedule ls`, `jcds schedule rm NAME`: recurring syncs (BullMQ job schedulers on
 * the sync queue). Adding a name that exists replaces its schedule (safe in deploy
 * scripts). The producer checks the name, the cron pattern, the zone and the folder.
 */
import { Argument, type Command } from 'commander';
import type { SyncDirection } from '../../../shared/queues/jobs.ts';
import type { ScheduleInfo } from '../../schedules.ts';
import type { CliContext } from '../context.ts';
import { formatTimeIn, localZone, table } from '../format.ts';
import { emitJson } from '../io.ts';

const zone = (s: ScheduleInfo): string => s.tz ?? `the worker's local time`;

/**
 * The next run in the schedule's zone, named: "2026-01-02 02:00 UTC". Without --tz the
 * worker's local zone decides, which this machine cannot know: its own is shown, marked.
 */
export function nextRunText(s: Pick<ScheduleInfo, 'next' | 'tz'>): string {
  if (!s.next) return '-';
  return s.tz ? formatTimeIn(s.next, s.tz) : `${formatTimeIn(s.next, localZone())} (local)`;
}

/** The --cron help: 5 fields, or 6 with seconds first. */
export const CRON_HELP =
  'cron pattern: 5 fields "minute hour day-of-month month day-of-week" (e.g. "0 2 * * *": 02:00 every day), or 6 fields with seconds first';

export function registerSchedule(program: Command, ctx: CliContext): void {
  const schedule = program.command('schedule').description('recurring syncs (cron)');
  schedule
    .command('add')
    .description(
      'add or replace a recurring sync: schedule add NAME --cron "0 2 * * *" sync up DIR',
    )
    .argument('<name>', 'a name for the schedule, e.g. nightly-up (letters, digits, ".", "_", "-")')
    .addArgument(new Argument('<action>', 'what to run').choices(['sync']))
    .addArgument(new Argument('<direction>', 'up or down').choices(['up', 'down']))
    .argument('<dir>', 'the folder (every worker must see it at the same path)')
    .requiredOption('--cron <pattern>', CRON_HELP)
    .option(
      '--tz <zone>',
      "IANA time zone of the pattern, e.g. UTC or Europe/Paris (default: the worker's)",
    )
    .option('--json', 'print the schedule as JSON on stdout')
    .action(
      async (
        name: string,
        _action: string,
        direction: SyncDirection,
        dir: string,
        opts: { cron: string; tz?: string; json?: boolean },
      ) => {
        await ctx.config();
        const producer = await ctx.producer();
        const s = await producer.addSchedule({
          name,
          cron: opts.cron,
          ...(opts.tz !== undefined ? { tz: opts.tz } : {}),
          direction,
          dir,
        });
        if (opts.json) emitJson(ctx.io, { event: 'schedule', ...s });
        else {
          ctx.io.err(
            `Schedule ${s.name}: sync ${s.direction} ${s.dir} at "${s.cron}" (${zone(s)}); next run ${nextRunText(s)}.\n` +
              'Runs happen while a worker is running (`jcds worker`).\n',
          );
        }
      },
    );
  schedule
    .command('ls')
    .description('list the schedules')
    .option('--json', 'one JSON object per schedule on stdout')
    .action(async (opts: { json?: boolean }) => {
      await ctx.config();
      const list = await (await ctx.producer()).listSchedules();
      if (opts.json) {
        for (const s of list) emitJson(ctx.io, { event: 'schedule', ...s });
        return;
      }
      if (list.length === 0) {
        ctx.io.err(
          'No schedules. Add one: jcds schedule add nightly --cron "0 2 * * *" sync up /srv/packages\n',
        );
        return;
      }
      // The list is the command's output: stdout, like `status` and `ls`.
      ctx.io.out(
        table(
          ['NAME', 'CRON', 'TZ', 'SYNC', 'DIR', 'NEXT RUN', 'RUNS'],
          list.map(s => [
            s.name,
            s.cron,
            s.tz ?? 'local',
            s.direction,
            s.dir,
            nextRunText(s),
            String(s.runs ?? 0),
          ]),
          { right: [6], ...(ctx.io.outIsTTY ? { fit: ctx.io.columns - 1 } : {}) },
        ),
      );
    });
  schedule
    .command('rm')
    .description('remove a schedule (a sync already running goes on)')
    .argument('<name>', 'the schedule name')
    .option('--json', 'print {event:"removed"} on stdout')
    .action(async (name: string, opts: { json?: boolean }) => {
      await ctx.config();
      await (await ctx.producer()).removeSchedule(name);
      if (opts.json) emitJson(ctx.io, { event: 'removed', name });
      else ctx.io.err(`Schedule ${name} removed.\n`);
    });
}
