/**
 * Node/V8 flags a worker process is started with (by `jcds worker`, the demo, the test
 * and bench harnesses, the Dockerfile and docker compose).
 *
 * Measured with `node test/bench/tools/memory-probe.ts 1024|4096 "<flags>"` (peak RSS of a
 * fresh worker during one upload) and the soak test F12 (2,000 small uploads, 2 workers):
 * - V8's defaults: the young generation grows to 2 x 32 MiB as per-part garbage (SDK
 *   middleware, BullMQ calls: about 430 KiB a part) arrives, so the peak grew with the
 *   number of parts: 233 MiB for 1 GiB, 271 MiB for 4 GiB. F12: flat at 210-219 MiB.
 * - `--max-semi-space-size=4` alone: 233 and 232 MiB, but more garbage reaches the old
 *   space, and F12 grew from 165-203 to 221-241 MiB within its 20 s.
 * - with `--max-old-space-size=128` as well: 213 and 215 MiB; F12 flat at 140-161 MiB.
 * A worker's live heap is 35-60 MiB while it uploads. The old-space cap is
 * JCDS_WORKER_HEAP_MIB (default 128): raise it for a worker that syncs a very large
 * library. Anyone starting `node worker/main.ts` by hand should pass the same flags.
 */
export const DEFAULT_WORKER_HEAP_MIB = 128;

export function workerNodeFlags(heapMib: number = DEFAULT_WORKER_HEAP_MIB): string[] {
  return ['--max-semi-space-size=4', `--max-old-space-size=${heapMib}`];
}
