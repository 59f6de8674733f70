/**
 * The `jcds` process entry (bin/jcds.js imports this module): runs the command, turns
 * SIGINT/SIGTERM into a clean stop of `--wait` (the jobs go on in the fleet), and ends the
 * process through the exit seam with the command's exit code.
 */
import { processExit } from './exit.ts';
import { run } from './program.ts';
import { dispatchSignal } from './signals.ts';

const controller = new AbortController();
let signals = 0;
const onSignal = (signal: NodeJS.Signals): void => {
  if (dispatchSignal(signal)) return;
  signals++;
  if (signals > 1) processExit.exit(130);
  controller.abort();
};
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => onSignal(s));

const code = await run(process.argv.slice(2), undefined, controller.signal);
processExit.exit(code);
