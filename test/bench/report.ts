/** The markdown table of one run and the check of each target against it. */
import { MiB, round, type Sample } from './lib/measure.ts';
import type {
  BatchSection,
  BenchResults,
  CeilingSection,
  MemorySection,
  TargetCheck,
  TransferSection,
} from './types.ts';

type AnySection = Partial<TransferSection & MemorySection & BatchSection & CeilingSection> & {
  error?: string;
  skipped?: unknown;
};

function section(r: BenchResults, name: string): AnySection | undefined {
  const s = r.sections[name] as AnySection | undefined;
  return s && !s.error ? s : undefined;
}

const sec = (ms: number | undefined): string =>
  ms === undefined || Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(2);
const rate = (s: Sample | undefined): string =>
  s?.mibps === undefined || Number.isNaN(s.mibps) ? '–' : s.mibps.toFixed(0);
const x = (v: number | undefined): string =>
  v === undefined || Number.isNaN(v) ? '–' : `${v.toFixed(2)}×`;
const mib = (bytes: number | undefined): string =>
  bytes === undefined || Number.isNaN(bytes) ? '–' : `${round(bytes / MiB, 0)} MiB`;
const medianOf = (s: Sample | undefined, key: string): number | undefined => {
  const list = (s?.['perRun'] as Record<string, number[]> | undefined)?.[key];
  if (!list || list.length === 0) return undefined;
  const sorted = [...list].sort((a, b) => a - b);
  const m = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1]! + sorted[m]!) / 2;
};

/** Median cores busy on the whole machine during the runs (2 = both cores). */
function busy(s: Sample | undefined): string {
  const v = medianOf(s, 'busyCores');
  return v === undefined || Number.isNaN(v) ? '–' : v.toFixed(1);
}

function rateOf(s: Sample | undefined): number {
  return s?.mibps ?? NaN;
}

/** The best rate among samples whose name starts with `prefix` (NaN when none). */
function bestRate(samples: Record<string, Sample> | undefined, prefix: string): number {
  const rates = Object.entries(samples ?? {})
    .filter(([k]) => k.startsWith(prefix))
    .map(([, s]) => rateOf(s));
  return rates.length ? Math.max(...rates) : NaN;
}

export function evaluateTargets(r: BenchResults): TargetCheck[] {
  const out: TargetCheck[] = [];
  const check = (
    name: string,
    target: string,
    value: number,
    ok: (v: number) => boolean,
    fmt: (v: number) => string,
  ): void => {
    out.push({
      name,
      target,
      measured: Number.isNaN(value) ? 'not measured' : fmt(value),
      met: Number.isNaN(value) ? null : ok(value),
    });
  };
  const up = section(r, 'upload');
  const down = section(r, 'download');
  const mem = section(r, 'memory');
  const batch = section(r, 'batch');
  const ceil = section(r, 'ceiling');
  const ratio = (s: AnySection | undefined, k: string): number => s?.ratios?.[k] ?? NaN;
  check(
    'upload: fleet (1 worker) vs lib-storage',
    '≥ 0.90×',
    ratio(up, 'fleet-1w/lib-storage'),
    v => v >= 0.9,
    x,
  );
  check(
    'upload: fleet (2 workers) vs lib-storage',
    '≥ 0.90×',
    ratio(up, 'fleet-2w/lib-storage'),
    v => v >= 0.9,
    x,
  );
  check(
    'upload: fleet (1 worker) vs awscli',
    '≥ 1.00×',
    ratio(up, 'fleet-1w/awscli'),
    v => v >= 1.0,
    x,
  );
  check(
    'upload: fleet (2 workers) vs awscli',
    '≥ 1.00×',
    ratio(up, 'fleet-2w/awscli'),
    v => v >= 1.0,
    x,
  );
  check(
    'download: fleet vs the better of curl and awscli',
    '≥ 0.90×',
    ratio(down, 'fleet/best(curl,awscli)'),
    v => v >= 0.9,
    x,
  );
  const peaks = mem?.peakRss?.map(p => p.median) ?? [];
  check(
    'memory: worker peak RSS',
    '≤ 256 MiB',
    peaks.length ? Math.max(...peaks) : NaN,
    v => v <= 256 * MiB,
    mib,
  );
  check(
    'memory: growth from the small to the large upload',
    '≤ 1.10×',
    mem?.growth ?? NaN,
    v => v <= 1.1,
    x,
  );
  check(
    'memory: worker RSS over a batch (after a full GC), above its plateau',
    '≤ 16 MiB',
    mem?.batch?.delta ?? NaN,
    v => v <= 16 * MiB,
    mib,
  );
  check(
    'batch: queue overhead per job',
    '≤ 15 ms',
    batch?.queueOverheadMs ?? NaN,
    v => v <= 15,
    v => `${v.toFixed(1)} ms`,
  );
  const fleetUp = Math.max(rateOf(up?.samples?.['fleet-1w']), rateOf(up?.samples?.['fleet-2w']));
  const putCeil = bestRate(ceil?.samples, 'curl-put');
  check('ceiling: simulator PUT vs fleet upload', '≥ 2.00×', putCeil / fleetUp, v => v >= 2, x);
  const fleetDown = rateOf(down?.samples?.['fleet']);
  const getCeil = bestRate(ceil?.samples, 'curl-get');
  check('ceiling: simulator GET vs fleet download', '≥ 2.00×', getCeil / fleetDown, v => v >= 2, x);
  return out;
}

export function renderMarkdown(r: BenchResults): string {
  const L: string[] = [];
  const size = r.plan.size;
  L.push(
    `Run of ${r.date.slice(0, 16).replace('T', ' ')} UTC, \`npm run bench${r.mode === 'quick' ? ' -- --quick' : ''}\` (${r.mode}: median of ${r.plan.runs} run${r.plan.runs > 1 ? 's' : ''}), ${r.durationS} s in all; ${String(r.machine['cpus'])} cores (${String(r.machine['cpuModel'])}), ${String(r.machine['memGiB'])} GiB; node ${r.versions['node']}, ${r.versions['awscli']?.split(' ')[0] ?? ''}, ${r.versions['boto3'] ?? ''}, ${r.versions['curl']?.split(' ').slice(0, 2).join(' ') ?? ''}.`,
  );
  const loads = Object.entries(r.load ?? {})
    .map(([k, v]) => `${k} ${v[0]}→${v[1]}`)
    .join(', ');
  if (loads)
    L.push(
      '',
      `1-minute load average per section (start→end; other work on the machine shows here): ${loads}.`,
    );
  if (r.mode === 'quick')
    L.push('', '_Quick run: smaller sizes, one run each; a smoke test, not a measurement._');

  L.push('', '**Targets**', '', '| target | wanted | measured | met |', '|---|---|---|---|');
  for (const t of r.targets ?? []) {
    L.push(
      `| ${t.name} | ${t.target} | ${t.measured} | ${t.met === null ? '–' : t.met ? 'yes' : '**no**'} |`,
    );
  }

  const swift = section(r, 'swift');
  const sw = (name: string): string => rate(swift?.samples?.[name]);
  const up = section(r, 'upload');
  if (up?.samples) {
    const s = up.samples;
    L.push(
      '',
      `**1. Upload of ${size / MiB} MiB** (MiB/s from the median time; ratio = fleet speed / client speed)`,
      '',
      '| client | settings | median s | MiB/s | fleet 1w ÷ | fleet 2w ÷ | sim CPU s | busy cores | Swift MiB/s |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    const row = (name: string, settings: string, swiftName?: string): void => {
      const q = s[name];
      const r1 = up.ratios?.[`fleet-1w/${name}`];
      const r2 = up.ratios?.[`fleet-2w/${name}`];
      L.push(
        `| ${name} | ${settings} | ${sec(q?.medianMs)} | ${rate(q)} | ${r1 ? x(r1) : ''} | ${r2 ? x(r2) : ''} | ${sec(medianOf(q, 'simCpuMs'))} | ${busy(q)} | ${swiftName ? sw(swiftName) : 'n/a'} |`,
      );
    };
    const ps = (up.settings?.['fleetPartSize'] as number | undefined) ?? NaN;
    const pc = up.settings?.['fleetPartConcurrencyPerWorker'] as number | undefined;
    row('fleet-1w', `1 worker, ${ps / MiB} MiB parts × ${pc}`);
    row('fleet-2w', `2 workers, ${ps / MiB} MiB parts × ${pc} each`);
    row('lib-storage', `${ps / MiB} MiB parts, queueSize ${pc}`, 'lib-storage');
    row('awscli', '`aws s3 cp`, defaults (8 MiB × 10)', 'awscli');
    row('boto3', '20 MiB parts × 5 threads (jamf-pro-sdk-python)', 'boto3');
    L.push(
      '',
      `Fleet timeline (median, s after enqueue; from BullMQ's timestamps): ${[
        'fleet-1w',
        'fleet-2w',
      ]
        .map(
          n =>
            `${n}: parts ${sec(medianOf(s[n], 'partsStartMs'))}–${sec(medianOf(s[n], 'partsEndMs'))}, hash job ${sec(medianOf(s[n], 'hashStartMs'))}–${sec(medianOf(s[n], 'hashEndMs'))}, object complete ${sec(s[n]?.medianMs)}`,
        )
        .join('; ')}.`,
      '',
      `Fleet end to end (package record + waiting for Jamf's SHA3-512 of the stored file): 1 worker ${sec(medianOf(s['fleet-1w'], 'totalMs'))} s, 2 workers ${sec(medianOf(s['fleet-2w'], 'totalMs'))} s; worker CPU ${sec(medianOf(s['fleet-1w'], 'workerCpuMs'))} s (1w), ${sec(medianOf(s['fleet-2w'], 'workerCpuMs'))} s (2w); lib-storage client CPU ${sec(medianOf(s['lib-storage'], 'clientCpuMs'))} s.`,
    );
  }

  const down = section(r, 'download');
  if (down?.samples) {
    const s = down.samples;
    L.push(
      '',
      `**2. Download of ${size / MiB} MiB** (to a file on the same disk)`,
      '',
      '| client | settings | median s | MiB/s | fleet ÷ | sim CPU s | busy cores | Swift MiB/s |',
      '|---|---|---|---|---|---|---|---|',
    );
    const row = (name: string, settings: string, swiftName?: string): void => {
      const q = s[name];
      const rr = down.ratios?.[`fleet/${name}`];
      L.push(
        `| ${name} | ${settings} | ${sec(q?.medianMs)} | ${rate(q)} | ${rr ? x(rr) : ''} | ${sec(medianOf(q, 'simCpuMs'))} | ${busy(q)} | ${swiftName ? sw(swiftName) : 'n/a'} |`,
      );
    };
    if (s['fleet']) row('fleet', 'download job, 1 worker');
    else
      L.push(
        `| fleet | ${String((down.skipped as Record<string, string> | undefined)?.['fleet'] ?? 'not measured')} | | | | | n/a |`,
      );
    row('curl', 'one stream, presigned URL', 'get-curl');
    row('awscli', '`aws s3 cp`, defaults', 'get-awscli');
    row('ranged-20MiBx5', '20 MiB ranges × 5 (jamf-pro-sdk-python)', 'get-ranged-20MiBx5');
  }

  const mem = section(r, 'memory');
  if (mem?.peakRss) {
    L.push(
      '',
      '**3. Worker peak RSS** (VmHWM of a fresh worker process after one upload)',
      '',
      '| upload | peak RSS (median) | runs | idle worker |',
      '|---|---|---|---|',
    );
    for (const p of mem.peakRss) {
      L.push(
        `| ${p.size / MiB} MiB | ${mib(p.median)} | ${p.runs.map(v => mib(v)).join(', ')} | ${mib(p.idlePeak[0])} |`,
      );
    }
    L.push(
      '',
      `Growth from ${mem.sizes?.[0] !== undefined ? mem.sizes[0] / MiB : '?'} MiB to ${mem.sizes?.at(-1) !== undefined ? mem.sizes.at(-1)! / MiB : '?'} MiB: ${x(mem.growth)}.`,
    );
    const b = mem.batch;
    if (b) {
      const signed = (v: number): string => `${v >= 0 ? '+' : '−'}${mib(Math.abs(v))}`;
      L.push(
        '',
        `**Worker RSS over a batch**: ${b.count} multipart uploads of distinct sizes (${(b.sizes[0] / MiB).toFixed(2)}–${(b.sizes[1] / MiB).toFixed(2)} MiB, parts of ${b.partSize / MiB} MiB, in waves of ${b.wave}) through one worker in ${sec(b.ms)} s, VmRSS after each wave; the plateau is the highest sample over uploads ${b.warmup + 1}–${b.warmup + b.window}`,
        '',
        '| VmRSS | plateau | max after it | delta (target ≤ 16 MiB) | final |',
        '|---|---|---|---|---|',
        `| after a full GC | ${mib(b.plateau)} | ${mib(b.max)} | ${signed(b.delta)} | ${mib(b.final)} |`,
        `| garbage included | ${mib(b.raw.plateau)} | ${mib(b.raw.max)} | ${signed(b.raw.delta)} | ${mib(b.raw.final)} |`,
      );
    }
  }

  const batch = section(r, 'batch');
  if (batch?.samples) {
    L.push(
      '',
      `**4. Batch of ${batch.count} × ${(batch.fileSize ?? 0) / MiB} MiB packages**`,
      '',
      '| scenario | what | total s | per job ms | busy cores |',
      '|---|---|---|---|---|',
    );
    const what: Record<string, string> = {
      'fleet-2w': 'uploadMany, 2 workers × concurrency 4',
      'fleet-1w-c1': 'uploadMany, 1 worker, concurrency 1',
      'direct-min': 'no queue: createJcdsFile, PutObject, createPackage',
      'direct-same': 'no queue: the worker’s own Jamf/S3 calls, in sequence',
    };
    for (const [k, label] of Object.entries(what)) {
      L.push(
        `| ${k} | ${label} | ${sec(batch.samples[k]?.medianMs)} | ${batch.perJobMs?.[k]?.toFixed(1) ?? '–'} | ${busy(batch.samples[k])} |`,
      );
    }
    const c1 = batch.samples['fleet-1w-c1'];
    L.push(
      '',
      `Queue overhead per job (fleet-1w-c1 − direct-same): **${batch.queueOverheadMs?.toFixed(1)} ms**. From BullMQ's timestamps in fleet-1w-c1: a job is processed for ${medianOf(c1, 'meanJobMs')?.toFixed(1) ?? '–'} ms on average, and the next job starts ${medianOf(c1, 'meanPickupGapMs')?.toFixed(1) ?? '–'} ms after the previous one finished.`,
    );
  }

  const ceil = section(r, 'ceiling');
  if (ceil?.samples) {
    L.push(
      '',
      `**5. Ceiling** (${size / MiB} MiB object)`,
      '',
      '| measure | median s | MiB/s | sim CPU s | busy cores | Swift MiB/s |',
      '|---|---|---|---|---|---|',
    );
    for (const [k, s] of Object.entries(ceil.samples)) {
      const swiftName = k.startsWith('curl') ? k : undefined;
      L.push(
        `| ${k} | ${sec(s.medianMs)} | ${rate(s)} | ${k.startsWith('dd') ? '' : sec(medianOf(s, 'simCpuMs'))} | ${busy(s)} | ${swiftName ? sw(swiftName) : 'n/a'} |`,
      );
    }
  }

  const errors = Object.entries(r.sections).filter(([, v]) => (v as AnySection).error);
  if (errors.length) {
    L.push('', '**Sections that failed**', '');
    for (const [k, v] of errors) L.push(`- ${k}: ${(v as AnySection).error}`);
  }
  if (swift && 'skipped' in swift && typeof swift.skipped === 'string')
    L.push('', `Swift column skipped: ${swift.skipped}`);
  return L.join('\n');
}
