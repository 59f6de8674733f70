/** The markdown table of one run and the check of each target against it. */
import { GiB, MiB, round, type Sample } from './lib/measure.ts';
import type { CliSection } from './sections/cli.ts';
import type { PeerSection } from './sections/peer.ts';
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
type Peer = Partial<PeerSection> & { error?: string };
type Cli = Partial<CliSection> & { error?: string };

function section(r: BenchResults, name: string): AnySection | undefined {
  const s = r.sections[name] as AnySection | undefined;
  return s && !s.error ? s : undefined;
}

const bad = (v: number | null | undefined): v is null | undefined =>
  v === undefined || v === null || Number.isNaN(v);
const sec = (ms: number | null | undefined): string => (bad(ms) ? '–' : (ms / 1000).toFixed(2));
const rate = (s: Sample | undefined): string =>
  s?.mibps === undefined || Number.isNaN(s.mibps) ? '–' : s.mibps.toFixed(0);
const x = (v: number | null | undefined): string => (bad(v) ? '–' : `${v.toFixed(2)}×`);
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

/** Median CPU seconds of the client per GiB moved (`cpuMs` of each run). */
function cpuPerGiB(s: Sample | undefined, bytes: number): number {
  const ms = medianOf(s, 'cpuMs');
  return ms === undefined ? NaN : ms / 1000 / (bytes / GiB);
}
const cpuCell = (s: Sample | undefined, bytes: number): string => {
  const v = cpuPerGiB(s, bytes);
  return bad(v) ? '–' : v.toFixed(2);
};

/** A row's cells after its name: the skip reason when it did not run, else `cells()`. */
function rowOrSkip(s: Sample | undefined, width: number, cells: () => string[]): string[] {
  const why = s?.['skipped'];
  if (typeof why === 'string') return [why, ...Array<string>(width - 1).fill('')];
  return cells();
}

export function evaluateTargets(r: BenchResults): TargetCheck[] {
  const out: TargetCheck[] = [];
  const check = (
    name: string,
    target: string,
    value: number,
    ok: ((v: number) => boolean) | null,
    fmt: (v: number) => string,
  ): void => {
    out.push({
      name,
      target,
      measured: bad(value) ? 'not measured' : fmt(value),
      met: bad(value) || ok === null ? null : ok(value),
    });
  };
  const up = section(r, 'upload');
  const mem = section(r, 'memory');
  const batch = section(r, 'batch');
  const peer = r.sections['peer'] as Peer | undefined;
  const cli = r.sections['cli'] as Cli | undefined;
  const pr = (k: string): number => (peer?.error ? NaN : (peer?.ratios?.[k] ?? NaN));
  const atLeast = (min: number) => (v: number) => v >= min;
  const atMost = (max: number) => (v: number) => v <= max;
  check(
    'upload, stored and record written: jamf-pro-sdk-python s / fleet s (`jcds upload --wait`, 1 worker)',
    '≥ 1.50×',
    pr('upload-record: peer/fleet'),
    atLeast(1.5),
    x,
  );
  check(
    'upload, until Jamf reports READY with its hash: jamf-pro-sdk-python s / fleet s',
    'shown (includes Jamf’s processing)',
    pr('upload-ready: peer/fleet'),
    null,
    x,
  );
  check(
    'download: 20 MiB × 5 ranged client s / fleet s (`jcds download --wait`, verified)',
    '≥ 1.50×',
    pr('download: peer/fleet'),
    atLeast(1.5),
    x,
  );
  check(
    'download: one curl stream s / fleet s',
    '≥ 0.50×',
    pr('download: curl/fleet'),
    atLeast(0.5),
    x,
  );
  check(
    'upload: fleet (1 worker) vs lib-storage `Upload` at the same part size (speed)',
    '≥ 0.90×',
    up?.ratios?.['fleet-1w/lib-storage'] ?? NaN,
    atLeast(0.9),
    x,
  );
  const size = (up?.size as number | undefined) ?? r.plan.size;
  check(
    'upload: worker CPU-s per GiB over lib-storage’s',
    '≤ 1.50×',
    cpuPerGiB(up?.samples?.['fleet-1w'], size) / cpuPerGiB(up?.samples?.['lib-storage'], size),
    atMost(1.5),
    x,
  );
  const cr = (k: string): number => (cli?.error ? NaN : (cli?.ratios?.[k] ?? NaN));
  check(
    `CLI start: \`jcds --help\` over \`node -e 0\` (median of ${cli?.runs ?? 10})`,
    '≤ 4.00×',
    cr('jcds --help / node -e 0'),
    atMost(4),
    x,
  );
  check(
    `CLI start: enqueuing one file (\`jcds upload FILE\`) over \`node -e 0\` (median of ${cli?.runs ?? 10})`,
    '≤ 6.00×',
    cr('jcds upload (enqueue) / node -e 0'),
    atMost(6),
    x,
  );
  const bs = batch?.samples;
  check(
    `batch of ${batch?.count ?? r.plan.batchCount} × 1 MiB: direct-min s / fleet (2 workers) s`,
    '≥ 2.00×',
    (bs?.['direct-min']?.medianMs ?? NaN) / (bs?.['fleet-2w']?.medianMs ?? NaN),
    atLeast(2),
    x,
  );
  const peaks = mem?.peakRss?.map(p => p.median) ?? [];
  check(
    'memory (kept): worker peak RSS',
    '≤ 256 MiB',
    peaks.length ? Math.max(...peaks) : NaN,
    atMost(256 * MiB),
    mib,
  );
  check(
    'memory (kept): growth from the small to the large upload',
    '≤ 1.10×',
    mem?.growth ?? NaN,
    atMost(1.1),
    x,
  );
  check(
    'memory (kept): worker RSS over a batch (after a full GC), above its plateau',
    '≤ 16 MiB',
    mem?.batch?.delta ?? NaN,
    atMost(16 * MiB),
    mib,
  );
  return out;
}

export function renderMarkdown(r: BenchResults): string {
  const L: string[] = [];
  const size = r.plan.size;
  L.push(
    `Run of ${r.date.slice(0, 16).replace('T', ' ')} UTC, \`npm run bench${r.mode === 'quick' ? ' -- --quick' : ''}\` (${r.mode}: median of ${r.plan.runs} run${r.plan.runs > 1 ? 's' : ''}), ${r.durationS} s in all; ${String(r.machine['cpus'])} cores (${String(r.machine['cpuModel'])}), ${String(r.machine['memGiB'])} GiB; node ${r.versions['node']}, ${r.versions['awscli']?.split(' ')[0] ?? ''}, ${r.versions['boto3'] ?? ''}, ${r.versions['requests'] ?? ''}, ${r.versions['curl']?.split(' ').slice(0, 2).join(' ') ?? ''}.`,
  );
  if (r.missingTools?.length)
    L.push(
      '',
      `**Tools missing**: ${r.missingTools.join(', ')}: their rows say "skipped"; \`bash scripts/install-bench-tools.sh\` installs them.`,
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
      '| client | settings | median s | MiB/s | fleet 1w ÷ | fleet 2w ÷ | client CPU s/GiB | sim CPU s | busy cores | Swift MiB/s |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    const row = (name: string, settings: string, swiftName?: string): void => {
      const q = s[name];
      const r1 = up.ratios?.[`fleet-1w/${name}`];
      const r2 = up.ratios?.[`fleet-2w/${name}`];
      const cells = rowOrSkip(q, 8, () => [
        sec(q?.medianMs),
        rate(q),
        r1 ? x(r1) : '',
        r2 ? x(r2) : '',
        cpuCell(q, size),
        sec(medianOf(q, 'simCpuMs')),
        busy(q),
        swiftName ? sw(swiftName) : 'n/a',
      ]);
      L.push(`| ${name} | ${settings} | ${cells.join(' | ')} |`);
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
      `Fleet end to end (package record + waiting for Jamf's hash of the stored file): 1 worker ${sec(medianOf(s['fleet-1w'], 'totalMs'))} s, 2 workers ${sec(medianOf(s['fleet-2w'], 'totalMs'))} s; worker CPU ${sec(medianOf(s['fleet-1w'], 'workerCpuMs'))} s (1w), ${sec(medianOf(s['fleet-2w'], 'workerCpuMs'))} s (2w) for the whole job; lib-storage client CPU ${sec(medianOf(s['lib-storage'], 'cpuMs'))} s. Client CPU s/GiB: the fleet's workers (until the job completed), lib-storage's (this process), the others' process trees.`,
    );
  }

  const down = section(r, 'download');
  if (down?.samples) {
    const s = down.samples;
    L.push(
      '',
      `**2. Download of ${size / MiB} MiB** (to a file on the same disk)`,
      '',
      '| client | settings | median s | MiB/s | fleet ÷ | client CPU s/GiB | sim CPU s | busy cores | Swift MiB/s |',
      '|---|---|---|---|---|---|---|---|---|',
    );
    const row = (name: string, settings: string, swiftName?: string): void => {
      const q = s[name];
      const rr = down.ratios?.[`fleet/${name}`];
      const cells = rowOrSkip(q, 7, () => [
        sec(q?.medianMs),
        rate(q),
        rr ? x(rr) : '',
        cpuCell(q, size),
        sec(medianOf(q, 'simCpuMs')),
        busy(q),
        swiftName ? sw(swiftName) : 'n/a',
      ]);
      L.push(`| ${name} | ${settings} | ${cells.join(' | ')} |`);
    };
    row('fleet', 'download job, 1 worker (CPU: the worker)');
    row('curl', 'one stream, presigned URL', 'get-curl');
    row('awscli', '`aws s3 cp`, defaults', 'get-awscli');
    row('ranged-20MiBx5', '20 MiB ranges × 5 (jamf-pro-sdk-python)', 'get-ranged-20MiBx5');
  }

  const peer = r.sections['peer'] as Peer | undefined;
  if (peer?.upload && peer.download) {
    const pSize = peer.size ?? size;
    const u = peer.upload;
    const d = peer.download;
    const ready = (q: Sample | undefined): number | undefined => medianOf(q, 'readyMs');
    L.push(
      '',
      `**Peer: jamf-pro-sdk-python's JCDS2 pattern beside the fleet, ${pSize / MiB} MiB** (each timed from its command's spawn; ratio = peer s / fleet s, above 1 the fleet is faster)`,
      '',
      '| upload | what | stored + record written s | peer ÷ fleet | READY with hash s | peer ÷ fleet | client CPU s/GiB | busy cores |',
      '|---|---|---|---|---|---|---|---|',
    );
    const uRow = (name: string, what: string): void => {
      const q = u[name];
      const cells = rowOrSkip(q, 6, () => [
        sec(q?.medianMs),
        name === 'peer' ? x(peer.ratios?.['upload-record: peer/fleet']) : '',
        sec(ready(q)),
        name === 'peer' ? x(peer.ratios?.['upload-ready: peer/fleet']) : '',
        cpuCell(q, pSize),
        busy(q),
      ]);
      L.push(`| ${name} | ${what} | ${cells.join(' | ')} |`);
    };
    uRow('fleet', '`jcds upload FILE --wait`, 1 running worker (CPU: worker + command)');
    uRow(
      'peer',
      'package scan, POST /api/v1/jcds/files, boto3 20 MiB × 5, Classic package record; then GET /api/v1/packages/{id} every 0.5 s',
    );
    const fu = u['fleet'];
    L.push(
      '',
      `Fleet upload: object complete in S3 at ${sec(medianOf(fu, 'objectStoredMs'))} s; CPU ${sec(medianOf(fu, 'workerCpuMs'))} s in the worker, ${sec(medianOf(fu, 'cliCpuMs'))} s in the command. Peer: ${medianOf(u['peer'], 'scannedPackages') ?? '–'} packages scanned, ${medianOf(u['peer'], 'parts') ?? '–'} part(s), ${medianOf(u['peer'], 'polls') ?? '–'} polls.`,
      '',
      '| download | what | median s | MiB/s | peer ÷ fleet | client CPU s/GiB | busy cores |',
      '|---|---|---|---|---|---|---|',
    );
    const dRow = (name: string, what: string): void => {
      const q = d[name];
      const rr = name === 'fleet' ? undefined : peer.ratios?.[`download: ${name}/fleet`];
      const cells = rowOrSkip(q, 5, () => [
        sec(q?.medianMs),
        rate(q),
        rr === undefined ? '' : x(rr),
        cpuCell(q, pSize),
        busy(q),
      ]);
      L.push(`| ${name} | ${what} | ${cells.join(' | ')} |`);
    };
    dRow(
      'fleet',
      '`jcds download NAME DEST --wait` (verified before the file appears; CPU: worker + command)',
    );
    dRow('peer', 'GET /api/v1/jcds/files/{name}, HEAD, 20 MiB ranges × 5 written at their offsets');
    dRow('peer-sdk-chunks', 'the same, written as the SDK does: chunk files, then concatenated');
    dRow('curl', 'one stream on the URL Jamf hands out (fetched before the clock starts)');
  } else if (peer?.error) L.push('', `**Peer**: failed: ${peer.error}`);

  const cli = r.sections['cli'] as Cli | undefined;
  if (cli?.samples) {
    L.push(
      '',
      `**CLI start** (median of ${cli.runs} interleaved runs, spawn to exit)`,
      '',
      '| command | median ms | over `node -e 0` | CPU ms (median) |',
      '|---|---|---|---|',
    );
    const over: Record<string, string> = {
      'jcds --help': 'jcds --help / node -e 0',
      'jcds upload (enqueue)': 'jcds upload (enqueue) / node -e 0',
    };
    for (const [k, q] of Object.entries(cli.samples)) {
      const ratioKey = over[k];
      L.push(
        `| ${k} | ${q.medianMs.toFixed(0)} | ${ratioKey ? x(cli.ratios?.[ratioKey]) : ''} | ${String(q['medianCpuMs'] ?? '–')} |`,
      );
    }
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
      `direct-min s / fleet-2w s: **${x((batch.samples['direct-min']?.medianMs ?? NaN) / (batch.samples['fleet-2w']?.medianMs ?? NaN))}**. Queue overhead per job (fleet-1w-c1 − direct-same): **${batch.queueOverheadMs?.toFixed(1)} ms**. From BullMQ's timestamps in fleet-1w-c1: a job is processed for ${medianOf(c1, 'meanJobMs')?.toFixed(1) ?? '–'} ms on average, and the next job starts ${medianOf(c1, 'meanPickupGapMs')?.toFixed(1) ?? '–'} ms after the previous one finished.`,
    );
  }

  const ceil = section(r, 'ceiling');
  if (ceil?.samples) {
    L.push(
      '',
      `**5. Ceiling** (${size / MiB} MiB object)`,
      '',
      '| measure | median s | MiB/s | client CPU s/GiB | sim CPU s | busy cores | Swift MiB/s |',
      '|---|---|---|---|---|---|---|',
    );
    for (const [k, q] of Object.entries(ceil.samples)) {
      const swiftName = k.startsWith('curl') ? k : undefined;
      const cells = rowOrSkip(q, 6, () => [
        sec(q.medianMs),
        rate(q),
        cpuCell(q, size),
        k.startsWith('dd') ? '' : sec(medianOf(q, 'simCpuMs')),
        busy(q),
        swiftName ? sw(swiftName) : 'n/a',
      ]);
      L.push(`| ${k} | ${cells.join(' | ')} |`);
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
