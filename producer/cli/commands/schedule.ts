/**
 * `jcds schedule add NAME --cron "0 2 * * *" [--tz ZONE] sync up|down DIR`,
 * `jcds schedule ls`, `jcds schedule rm NAME`: recurring syncs (BullMQ job schedulers on
 * the sync queue). Adding a name that exists replaces its schedule (safe in deploy
 * scripts). The producer checks the name, the cron pattern, the zone and the folder.
 */
import { Argument, Option, type Command } from 'commander';
import type { IfExists, SyncDirection } from '../../../shared/queues/jobs.ts';
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

/** The sync options of a schedule, as the flags that give them (" --category Apps"), or "". */
export function optionsText(
  s: Pick<ScheduleInfo, 'ifExists' | 'category' | 'followSymlinks'>,
): string {
  const flags = [
    ...(s.ifExists ? [`--if-exists ${s.ifExists}`] : []),
    ...(s.category ? [`--category ${JSON.stringify(s.category)}`] : []),
    ...(s.followSymlinks ? ['--follow-symlinks'] : []),
  ];
  return flags.length > 0 ? ` ${flags.join(' ')}` : '';
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
    .addOption(
      new Option(
        '--if-exists <policy>',
        'sync up: a new file whose name Jamf already has (default skip)',
      ).choices(['skip', 'replace', 'fail']),
    )
    .option('--category <name>', 'sync up: the Jamf Pro category of new packages')
    .option(
      '--follow-symlinks',
      'sync up: also publish files that symbolic links in the folder point to outside it',
    )
    .option('--json', 'print the schedule as JSON on stdout')
    .action(
      async (
        name: string,
        _action: string,
        direction: SyncDirection,
        dir: string,
        opts: {
          cron: string;
          tz?: string;
          json?: boolean;
          ifExists?: IfExists;
          category?: string;
          followSymlinks?: boolean;
        },
      ) => {
        await ctx.config();
        const producer = await ctx.producer();
        const s = await producer.addSchedule({
          name,
          cron: opts.cron,
          ...(opts.tz !== undefined ? { tz: opts.tz } : {}),
          direction,
          dir,
          ...(opts.ifExists !== undefined ? { ifExists: opts.ifExists } : {}),
          ...(opts.category !== undefined ? { category: opts.category } : {}),
          ...(opts.followSymlinks ? { followSymlinks: true } : {}),
        });
        if (opts.json) emitJson(ctx.io, { event: 'schedule', ...s });
        else {
          ctx.io.err(
            `Schedule ${s.name}: sync ${s.direction} ${s.dir}${optionsText(s)} at "${s.cron}" (${zone(s)}); next run ${nextRunText(s)}.\n` +
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
          ['NAME', 'CRON', 'TZ', 'SYNC', 'DIR', 'NEXT RUN', 'RUNS', 'OPTIONS'],
          list.map(s => [
            s.name,
            s.cron,
            s.tz ?? 'local',
            s.direction,
            s.dir,
            nextRunText(s),
            String(s.runs ?? 0),
            optionsText(s).trim() || '-',
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
