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
  sections: Record<string, unknown>;
  targets?: TargetCheck[];
  /** 1-minute load average at the start and end of each section (other work on the machine). */
  load: Record<string, [number, number]>;
  durationS: number;
}
