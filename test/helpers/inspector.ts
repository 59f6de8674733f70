/**
 * A worker process's V8 inspector, for memory measurements: start the worker with
 * `inspectorEnv(port)` in its environment, then `connectInspector(port)`. `gc()` forces a
 * full garbage collection, so a VmRSS sampled right after holds what the worker retains,
 * not how much garbage V8 let pile up since its last collection (that alone moves a busy
 * worker's VmRSS within some 40 MiB).
 */
import { createServer } from 'node:net';

export interface Inspector {
  /** A full (mark-compact) garbage collection, awaited. */
  gc(): Promise<void>;
  /** process.memoryUsage() of the inspected process. */
  memoryUsage(): Promise<NodeJS.MemoryUsage>;
  close(): void;
}

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** The environment that makes a spawned Node process listen for an inspector on `port`. */
export function inspectorEnv(port: number): Record<string, string> {
  return { NODE_OPTIONS: `--inspect=127.0.0.1:${port}` };
}

export async function connectInspector(port: number): Promise<Inspector> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
    webSocketDebuggerUrl: string;
  }>;
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${port}`);
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve, { once: true });
    ws.addEventListener('error', reject, { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  ws.addEventListener('message', ev => {
    const msg = JSON.parse(String(ev.data)) as {
      id?: number;
      result?: unknown;
      error?: { message: string };
    };
    if (msg.id === undefined) return;
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p?.reject(new Error(`inspector: ${msg.error.message}`));
    else p?.resolve(msg.result);
  });
  ws.addEventListener('close', () => {
    for (const p of pending.values()) p.reject(new Error('inspector connection closed'));
    pending.clear();
  });
  const call = (method: string, params: object = {}): Promise<unknown> => {
    const id = nextId++;
    ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  };
  await call('HeapProfiler.enable');
  return {
    gc: async () => {
      await call('HeapProfiler.collectGarbage');
    },
    memoryUsage: async () => {
      const r = (await call('Runtime.evaluate', {
        expression: 'JSON.stringify(process.memoryUsage())',
        returnByValue: true,
      })) as { result: { value: string } };
      return JSON.parse(r.result.value) as NodeJS.MemoryUsage;
    },
    close: () => ws.close(),
  };
}
