/**
 * Diagnostic: where a worker allocates during one fleet upload, garbage included. The
 * worker runs with --inspect on a free port; this connects over the DevTools protocol and
 * samples allocations (HeapProfiler.startSampling with the objects later collected by
 * minor and major GCs kept), then prints the functions that allocated most:
 * `node test/bench/tools/alloc-probe.ts [sizeMiB=1024] [top=25]`.
 */
import { createServer } from 'node:net';
import { startBenchEnv } from '../lib/env.ts';
import { fleetUpload } from '../lib/fleet-ops.ts';
import { JobWatcher } from '../lib/jobs.ts';
import { MiB } from '../lib/measure.ts';
import { makeFile } from '../../helpers/fleet.ts';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const sizeMiB = Number(process.argv[2] ?? 1024);
const top = Number(process.argv[3] ?? 25);

const port = await new Promise<number>(resolve => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => resolve(p));
  });
});

let nextId = 1;
const pending = new Map<number, (v: unknown) => void>();
function call(ws: WebSocket, method: string, params: object = {}): Promise<unknown> {
  const id = nextId++;
  ws.send(JSON.stringify({ id, method, params }));
  return new Promise(resolve => pending.set(id, resolve));
}

const env = await startBenchEnv();
const watcher = new JobWatcher(env.uploadEvents);
try {
  const file = await makeFile(env.dir, 'alloc.pkg', sizeMiB * MiB);
  await env.startWorkers(1, { NODE_OPTIONS: `--inspect=127.0.0.1:${port}` });
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
    webSocketDebuggerUrl: string;
  }>;
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
  await new Promise(r => ws.addEventListener('open', r, { once: true }));
  ws.addEventListener('message', ev => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown };
    if (msg.id) pending.get(msg.id)?.(msg.result);
  });
  await call(ws, 'HeapProfiler.enable');
  await call(ws, 'HeapProfiler.startSampling', {
    samplingInterval: 16384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  // The worker's own view of its memory every second: V8 heap vs external (Buffers).
  const usage: string[] = [];
  const timer = setInterval(() => {
    void call(ws, 'Runtime.evaluate', {
      expression:
        'JSON.stringify(Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, Math.round(v / 1048576)])))',
      returnByValue: true,
    }).then(r => usage.push((r as { result: { value: string } }).result.value));
  }, 1000);
  const t = await fleetUpload(env.producer, watcher, file.path, `alloc-${Date.now()}.pkg`);
  clearInterval(timer);
  const { profile } = (await call(ws, 'HeapProfiler.stopSampling')) as {
    profile: { head: ProfileNode };
  };
  ws.close();
  const byFn = new Map<string, number>();
  const byStack = new Map<string, number>();
  let total = 0;
  const walk = (n: ProfileNode, stack: string[]): void => {
    const where = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '')}:${n.callFrame.lineNumber + 1}`;
    const s = [...stack, where];
    if (n.selfSize > 0) {
      total += n.selfSize;
      byFn.set(where, (byFn.get(where) ?? 0) + n.selfSize);
      const key = s.slice(-6).join(' < ');
      byStack.set(key, (byStack.get(key) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, s);
  };
  walk(profile.head, []);
  const mib = (b: number): string => (b / MiB).toFixed(1);
  process.stdout.write(
    `upload ${sizeMiB} MiB in ${Math.round(t.totalMs)} ms; sampled allocations ${mib(total)} MiB\n`,
  );
  process.stdout.write(`memoryUsage every second (MiB):\n${usage.join('\n')}\n`);
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top))
    process.stdout.write(`${mib(v).padStart(8)} MiB  ${k}\n`);
  process.stdout.write('\nheaviest stacks (innermost first, 6 frames):\n');
  for (const [k, v] of [...byStack].sort((a, b) => b[1] - a[1]).slice(0, 10))
    process.stdout.write(`${mib(v).padStart(8)} MiB  ${k.split(' < ').reverse().join(' < ')}\n`);
  await env.stopWorkers();
} finally {
  watcher.close();
  await env.close();
}
