/**
 * Node/V8 flags a worker process is started with (by `jcds worker`, the demo, the test
 * and bench harnesses, the Dockerfile and docker compose).
 *
 * `--max-semi-space-size=4`: V8's young generation otherwise grows to 2 × 32 MiB as an
 * upload's per-part garbage (SDK middleware, BullMQ calls: about 430 KiB a part) keeps
 * arriving, so a worker's peak RSS grew with the number of parts: 233 MiB for 1 GiB and
 * 271 MiB for 4 GiB. With 4 MiB semi-spaces it is flat: 233 and 232 MiB
 * (`node test/bench/tools/memory-probe.ts 1024|4096 --max-semi-space-size=4`).
 * Anyone starting `node worker/main.ts` by hand should pass the same flags.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
