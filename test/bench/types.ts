/** Shapes of the benchmark plan and of bench-results/*.json. */
import type { Sample } from './lib/measure.ts';

export interface Plan {
  quick: boolean;
  /** Runs per figure (the median is reported). */
  runs: number;
  /** Size of the upload/download test file, bytes. */
  size: number;
  /** Upload sizes for the worker memory test, bytes (small, large). */
  memorySizes: number[];
  /** Multipart uploads of distinct sizes in the worker memory batch. */
  memoryBatchCount: number;
  batchCount: number;
  batchFileSize: number;
}

export interface TransferSection {
  size: number;
  settings: Record<string, unknown>;
  samples: Record<string, Sample>;
  ratios: Record<string, number>;
  notes: string[];
  skipped?: Record<string, string>;
}

export interface MemorySection {
  sizes: number[];
  /** Per size: peak RSS (VmHWM) of each run's worker, bytes, and the median. */
  peakRss: Array<{ size: number; runs: number[]; median: number; idlePeak: number[] }>;
  /** Large-size median over small-size median. */
  growth: number;
  /** A batch of multipart uploads of distinct sizes through one worker (issue 13 §3). */
  batch?: MemoryBatch;
}

/**
 * VmRSS of one worker after each wave of a batch and a full GC, judged by the plateau rule
 * of test/helpers/rss-plateau.ts (warm-up and window in uploads). Bytes.
 */
export interface MemoryBatch {
  count: number;
  /** Uploads sent together (the worker's upload concurrency). */
  wave: number;
  partSize: number;
  /** Smallest and largest file, bytes. */
  sizes: [number, number];
  warmup: number;
  window: number;
  plateau: number;
  /** Highest sample after the window. */
  max: number;
  /** max - plateau: the target is at most 16 MiB. */
  delta: number;
  final: number;
  /** The same figures from VmRSS sampled before the GC (garbage included). */
  raw: { plateau: number; max: number; delta: number; final: number };
  ms: number;
}

export interface BatchSection {
  count: number;
  fileSize: number;
  samples: Record<string, Sample>;
  perJobMs: Record<string, number>;
  queueOverheadMs: number;
  notes: string[];
}

export interface CeilingSection {
  size: number;
  samples: Record<string, Sample>;
  notes: string[];
}

export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  met: boolean | null;
}

export interface BenchResults {
  date: string;
  mode: 'quick' | 'full';
  plan: Plan;
  machine: Record<string, unknown>;
  versions: Record<string, string>;
  /** External tools not found at the start (their rows are skipped). */
  missingTools: string[];
  sections: Record<string, unknown>;
  targets?: TargetCheck[];
  /** 1-minute load average at the start and end of each section (other work on the machine). */
  load: Record<string, [number, number]>;
  durationS: number;
}
