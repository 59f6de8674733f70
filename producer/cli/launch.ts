/**
 * Runs a long-lived part of the fleet (`worker/main.ts`, `worker/monitor/main.ts`, or their
 * build in dist/) as a child process. producer/ never imports worker/ code (the two sides
 * share only shared/), so the CLI starts them the way docker compose does: `node <entry>`.
 * The child runs in its own process group and gets each signal the CLI receives exactly
 * once (a terminal's Ctrl-C would otherwise reach both and count as two); its exit code
 * becomes the CLI's.
 *
 * In its own process group the child would outlive a CLI killed by SIGKILL (no signal to
 * forward): with `watchParent`, it gets an IPC channel, which the kernel closes when the
 * CLI dies however it dies, and the child (worker/main.ts) shuts down on 'disconnect'.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { forwardSignals } from './signals.ts';

/**
 * True when this module is the build in dist/ (bin/jcds.js runs dist/ when it is fresh):
 * the child is then started from dist/ too, so the CLI and its worker always run the same
 * code, compiled or not.
 */
export const FROM_DIST = import.meta.url.endsWith('.js');

/**
 * The file to run for an entry named by its source path (`worker/main.ts`): that file, or
 * its build (`dist/worker/main.js`) when this CLI runs from dist/.
 */
export function entryPath(relative: string): string {
  const built = FROM_DIST ? relative.replace(/\.ts$/, '.js') : relative;
  return fileURLToPath(new URL(`../../${built}`, import.meta.url));
}

export async function runChild(
  relativeEntry: string,
  args: string[],
  env: Record<string, string | undefined>,
  nodeFlags: readonly string[] = [],
  options: { watchParent?: boolean } = {},
): Promise<number> {
  const child = spawn(process.execPath, [...nodeFlags, entryPath(relativeEntry), ...args], {
    cwd: process.cwd(),
    env,
    stdio: options.watchParent ? ['inherit', 'inherit', 'inherit', 'ipc'] : 'inherit',
    detached: true,
  });
  // The channel is only there to close when this process dies: it must not keep it alive.
  if (options.watchParent) child.channel?.unref();
  const stop = forwardSignals(signal => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 15) : 15)),
      );
    });
  } finally {
    stop();
  }
}
