/**
 * Runs a long-lived part of the fleet (`worker/main.ts`, `worker/monitor/main.ts`) as a
 * child process. producer/ never imports worker/ code (the two sides share only shared/),
 * so the CLI starts them the way docker compose does: `node <entry>`. The child runs in
 * its own process group and gets each signal the CLI receives exactly once (a terminal's
 * Ctrl-C would otherwise reach both and count as two); its exit code becomes the CLI's.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { forwardSignals } from './signals.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function entryPath(relative: string): string {
  return fileURLToPath(new URL(`../../${relative}`, import.meta.url));
}

export async function runChild(
  relativeEntry: string,
  args: string[],
  env: Record<string, string | undefined>,
  nodeFlags: readonly string[] = [],
): Promise<number> {
  const child = spawn(process.execPath, [...nodeFlags, entryPath(relativeEntry), ...args], {
    cwd: process.cwd(),
    env,
    stdio: 'inherit',
    detached: true,
  });
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
