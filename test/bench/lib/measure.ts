/**
 * Measuring helpers for the benchmark: medians, rates, child processes timed from spawn to
 * exit, and a process's peak resident set (VmHWM) read from /proc.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** MiB per second for `bytes` moved in `ms`. */
export function mibps(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** One measured figure: every run's value and their median. */
export interface Sample {
  /** Wall-clock milliseconds of each run. */
  runsMs: number[];
  medianMs: number;
  /** MiB/s of the median run (when a byte count applies). */
  mibps?: number;
  /** Free-form facts about how it was run (settings, versions). */
  notes?: string;
  [extra: string]: unknown;
}

export function sample(
  runsMs: number[],
  bytes?: number,
  extra: Record<string, unknown> = {},
): Sample {
  const medianMs = median(runsMs);
  return {
    runsMs: runsMs.map(v => round(v, 1)),
    medianMs: round(medianMs, 1),
    ...(bytes !== undefined ? { mibps: round(mibps(bytes, medianMs), 1) } : {}),
    ...extra,
  };
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export interface RunResult {
  /** Wall-clock ms from the command's spawn to its exit. */
  ms: number;
  /** CPU time (user + system, ms) of the command and every process it waited for. */
  cpuMs: number;
  /** Epoch ms at the command's spawn (to compare with times other processes logged). */
  startedAt: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Called with each complete line of stdout as it arrives, with the epoch ms it came. */
  onLine?: (line: string, at: number) => void;
}

/**
 * bash runs the command and reports on fd 3 when it started and ended (EPOCHREALTIME,
 * bash 5) and `times`: the user and system CPU of the children it waited for, which counts
 * every process of the tree that was reaped (a Python's threads, awscli, node's workers).
 * bash's own start-up is outside the start/end pair.
 */
const WRAP =
  's=$EPOCHREALTIME; "$@"; rc=$?; e=$EPOCHREALTIME; { echo "$s $e"; times; } >&3; exit $rc';
const BASH = existsSync('/bin/bash') ? '/bin/bash' : 'bash';

/** `1m2.345s` (times' format; the decimal mark follows the locale) → ms. */
function timesMs(text: string): number {
  const m = /(\d+)m([\d.,]+)s/.exec(text);
  return m ? (Number(m[1]) * 60 + Number(m[2]!.replace(',', '.'))) * 1000 : NaN;
}

/** Parses the wrapper's fd-3 report: [startEpochMs, endEpochMs, childCpuMs]. */
export function parseWrapReport(report: string): [number, number, number] {
  const lines = report.trim().split('\n');
  const [s, e] = (lines[0] ?? '').split(' ').map(v => Number(v.replace(',', '.')) * 1000);
  // `times` prints the shell's own user/sys, then its children's.
  const children = (lines[2] ?? '').trim().split(/\s+/);
  return [s ?? NaN, e ?? NaN, timesMs(children[0] ?? '') + timesMs(children[1] ?? '')];
}

/**
 * Runs a command to its end and times it from spawn to exit, with the CPU time of its
 * whole process tree. A non-zero exit throws with the output's tail. `env` replaces the
 * environment entirely (no inherited AWS_* or pyenv).
 */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const epoch0 = Date.now();
    const child = spawn(BASH, ['-c', WRAP, 'bench-run', cmd, ...args], {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let report = '';
    let partial = '';
    child.stdout!.on('data', (b: Buffer) => {
      const text = b.toString();
      if (stdout.length < 1_000_000) stdout += text;
      if (options.onLine) {
        const at = Date.now();
        partial += text;
        let i;
        while ((i = partial.indexOf('\n')) >= 0) {
          options.onLine(partial.slice(0, i), at);
          partial = partial.slice(i + 1);
        }
      }
    });
    child.stderr!.on('data', (b: Buffer) => {
      if (stderr.length < 1_000_000) stderr += b.toString();
    });
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => (report += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30 * 60_000);
    child.once('error', err => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const nodeMs = performance.now() - t0;
      if (code !== 0) {
        reject(
          new Error(
            `${cmd} ${args.join(' ')} exited with ${code ?? signal}:\n${stderr.slice(-3000)}${stdout.slice(-1000)}`,
          ),
        );
        return;
      }
      const [s, e, cpuMs] = parseWrapReport(report);
      // Without EPOCHREALTIME (bash < 5) the spawn-to-exit time seen from here stands in.
      const exact = Number.isFinite(s) && Number.isFinite(e) && e >= s;
      resolve({
        ms: exact ? e - s : nodeMs,
        cpuMs,
        startedAt: exact ? s : epoch0,
        code,
        stdout,
        stderr,
      });
    });
  });
}

/** VmHWM (peak RSS) and VmRSS of a live process, in bytes. */
export function memoryOf(pid: number): { peakRss: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { peakRss: kb('VmHWM'), rss: kb('VmRSS') };
}

/** CPU time (user + system, ms) a live process has used so far, from /proc/<pid>/stat. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the name: state(0) … utime(11) stime(12), in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** Busy CPU time of the whole machine so far (all processes, ms), from /proc/stat. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …, in clock ticks of 10 ms.
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - (v[3] ?? 0) - (v[4] ?? 0)) * 10;
}

/**
 * Waits until process `pid` has been (nearly) idle for `quietMs`: the simulator hashes
 * every object that lands in its bucket in background threads (as Jamf does), also after
 * the object was deleted, so a run must not start while the last one's hashing still runs.
 * Returns the ms waited (at most `maxMs`).
 */
export async function settle(pid: number, quietMs = 600, maxMs = 120_000): Promise<number> {
  const t0 = performance.now();
  let last = cpuMsOf(pid);
  let quietSince = performance.now();
  while (performance.now() - t0 < maxMs) {
    await new Promise(r => setTimeout(r, 200));
    const now = cpuMsOf(pid);
    // Busy means more than 10% of a core since the last look.
    if (now - last > 20) quietSince = performance.now();
    last = now;
    if (performance.now() - quietSince >= quietMs) break;
  }
  return performance.now() - t0;
}

/** Prints the summary (tools/profile-summary.ts) of every V8 CPU profile in `dir`. */
export async function printProfiles(dir: string, top: number): Promise<void> {
  for (const f of readdirSync(dir).filter(n => n.endsWith('.cpuprofile'))) {
    const r = await run(process.execPath, [
      join(import.meta.dirname, '..', 'tools', 'profile-summary.ts'),
      join(dir, f),
      String(top),
    ]);
    process.stdout.write(r.stdout);
  }
}
