/**
 * The plateau rule for a worker's resident set over a batch (the memory test H3.1 in
 * test/integration/faults-memory.test.ts and the benchmark's memory section): VmRSS
 * samples taken as the batch goes (there: after each wave of uploads and a full GC). The
 * first `warmup` samples, while the part-buffer pool, the connection pools and V8's heap
 * fill, are not judged; the plateau is the highest of the next `window` samples, so that it
 * holds the top of what the samples move by; every later sample is judged against it.
 */
export interface RssPlateau {
  /** Highest sample of the window, bytes (or whatever unit the samples are in). */
  plateau: number;
  /** Highest sample after the window. */
  max: number;
  /** max - plateau (negative when the rest stayed below the plateau). */
  delta: number;
  /** The last sample. */
  final: number;
  /** The sample after the warm-up. */
  afterWarmup: number;
  /** 1-based index of the first sample above plateau + margin, if any. */
  firstOver?: number;
}

export function rssPlateau(
  samples: number[],
  o: { warmup: number; window: number; margin: number },
): RssPlateau {
  if (samples.length <= o.warmup + o.window)
    throw new RangeError(
      `${samples.length} samples leave none after the warm-up (${o.warmup}) and the window (${o.window})`,
    );
  const plateau = Math.max(...samples.slice(o.warmup, o.warmup + o.window));
  const rest = samples.slice(o.warmup + o.window);
  const max = Math.max(...rest);
  const over = rest.findIndex(v => v > plateau + o.margin);
  return {
    plateau,
    max,
    delta: max - plateau,
    final: samples[samples.length - 1]!,
    afterWarmup: samples[o.warmup - 1] ?? samples[0]!,
    ...(over >= 0 ? { firstOver: o.warmup + o.window + over + 1 } : {}),
  };
}
