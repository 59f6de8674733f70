/**
 * `npm run bench [-- --quick] [-- --only ceiling,upload,download,peer,cli,memory,batch,swift]
 *                [-- --runs N] [-- --size 1GiB] [-- --doc]`
 *
 * Measures the fleet against the usual clients in one run on one machine, against the same
 * S3 endpoint (the simulator's S3, started here with redis-server), each figure the median
 * of several runs (3; 1 with --quick) and each comparison a ratio taken in the same run.
 * Writes bench-results/<timestamp>.json (+ latest.json) and a markdown table
 * (bench-results/<timestamp>.md); --doc also puts that table into docs/performance.md
 * between its bench markers. --quick is a smoke run (smaller sizes, one run each): its
 * figures are printed, never asserted.
 *
 * Needs redis-server. The clients it compares with (awscli, python3 with boto3 and requests,
 * curl; Swift for its section) are probed at the start (lib/tools.ts): the rows of a missing
 * one say "skipped: <tool> missing — install with …", everything else runs, and the exit
 * status stays 0 (the summary line names what was missing). scripts/install-bench-tools.sh
 * installs them all.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { parseBytes } from '../../shared/units.ts';
import { toolVersions, useTools } from './lib/clients.ts';
import { missingList, probeTools } from './lib/tools.ts';
import { startBenchEnv } from './lib/env.ts';
import { JobWatcher } from './lib/jobs.ts';
import { GiB, MiB, log, round } from './lib/measure.ts';
import { renderMarkdown, evaluateTargets } from './report.ts';
import { runBatch } from './sections/batch.ts';
import { runCeiling } from './sections/ceiling.ts';
import { runCli } from './sections/cli.ts';
import { runPeer } from './sections/peer.ts';
import { runDownload } from './sections/download.ts';
import { runMemory } from './sections/memory.ts';
import { runSwift } from './sections/swift.ts';
import { runUploadSection } from './sections/upload-section.ts';
import type { BenchResults, Plan } from './types.ts';
import { makeFile } from '../helpers/fleet.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SECTIONS = [
  'ceiling',
  'upload',
  'download',
  'peer',
  'cli',
  'memory',
  'batch',
  'swift',
] as const;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    size: { type: 'string' },
    doc: { type: 'boolean', default: false },
  },
});

const quick = values.quick ?? false;
const only = new Set(values.only ? values.only.split(',').map(s => s.trim()) : SECTIONS);
for (const s of only) {
  if (!(SECTIONS as readonly string[]).includes(s)) {
    process.stderr.write(`unknown section ${s}: use ${SECTIONS.join(', ')}\n`);
    process.exit(2);
  }
}
// Issue 14 measures 1 GiB: the peer's multipart threshold is 1 GiB too.
const size = values.size ? parseBytes(values.size) : quick ? 128 * MiB : 1 * GiB;
if (!size) {
  process.stderr.write(`--size ${values.size} is not a size\n`);
  process.exit(2);
}
const plan: Plan = {
  quick,
  runs: values.runs ? Number(values.runs) : quick ? 1 : 3,
  size,
  memorySizes: quick ? [96 * MiB, 384 * MiB] : [1 * GiB, 4 * GiB],
  memoryBatchCount: quick ? 80 : 200,
  batchCount: quick ? 30 : 300,
  batchFileSize: 1 * MiB,
};

const started = performance.now();
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = join(ROOT, 'bench-results');
mkdirSync(outDir, { recursive: true });

log(
  `mode ${quick ? 'quick' : 'full'}, runs ${plan.runs}, file ${size / MiB} MiB, sections ${[...only].join(',')}`,
);
const tools = await probeTools();
useTools(tools);
for (const [tool, m] of Object.entries(tools.missing))
  log(`${tool} missing (${m.why}): its rows are skipped; install with ${m.install}`);
const env = await startBenchEnv();
// Interrupted: stop what the bench started (redis-server would outlive it) and go.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the simulator, redis-server and workers`);
    void env.close().finally(() => process.exit(130));
  });
}
const watcher = new JobWatcher(env.uploadEvents);
const results: BenchResults = {
  date: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  plan,
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: round(totalmem() / GiB, 1),
    kernel: release(),
  },
  versions: await toolVersions(tools),
  missingTools: missingList(tools),
  sections: {},
  load: {},
  durationS: 0,
};

const save = (): void => {
  results.durationS = round((performance.now() - started) / 1000, 1);
  results.targets = evaluateTargets(results);
  const json = JSON.stringify(results, null, 2);
  writeFileSync(join(outDir, `${stamp}.json`), json);
  writeFileSync(join(outDir, 'latest.json'), json);
  writeFileSync(join(outDir, `${stamp}.md`), renderMarkdown(results));
};

let failed = false;
try {
  log(`making the ${size / MiB} MiB test file`);
  const file = await makeFile(env.dir, 'bench-source.pkg', size);
  const sections: Array<[string, () => Promise<unknown>]> = [
    ['ceiling', () => runCeiling(env, plan, file.path)],
    ['upload', () => runUploadSection(env, watcher, plan, file.path)],
    ['download', () => runDownload(env, watcher, plan, file)],
    ['peer', () => runPeer(env, watcher, plan, file)],
    ['cli', () => runCli(env, plan)],
    ['memory', () => runMemory(env, watcher, plan)],
    ['batch', () => runBatch(env, watcher, plan)],
    ['swift', () => runSwift(env, plan, file.path)],
  ];
  for (const [name, fn] of sections) {
    if (!only.has(name)) continue;
    const loadBefore = round(loadavg()[0] ?? NaN, 2);
    log(`section ${name} (load average ${loadBefore})`);
    try {
      results.sections[name] = await fn();
      results.load[name] = [loadBefore, round(loadavg()[0] ?? NaN, 2)];
    } catch (err) {
      failed = true;
      log(`section ${name} failed: ${(err as Error).stack ?? String(err)}`);
      results.sections[name] = { error: (err as Error).message };
    }
    save();
  }
  rmSync(file.path, { force: true });
} finally {
  watcher.close();
  await env.close();
}

save();
const md = renderMarkdown(results);
const errors = Object.entries(results.sections).filter(([, v]) => (v as { error?: string }).error);
const missing = missingList(tools);
const summary = `bench${quick ? ' --quick' : ''}: ${Object.keys(results.sections).length - errors.length} sections ran, ${errors.length} failed${errors.length ? ` (${errors.map(([k]) => k).join(', ')})` : ''}${missing.length ? `; tools missing: ${missing.join(', ')} (their rows skipped: scripts/install-bench-tools.sh)` : ''}; table in bench-results/${stamp}.md`;
// A quick run is a smoke test (CI): its table goes to bench-results/, stdout gets one line.
process.stdout.write(quick ? `${summary}\n` : `${md}\n\n${summary}\n`);
if (values.doc) {
  const docPath = join(ROOT, 'docs', 'performance.md');
  const doc = readFileSync(docPath, 'utf8');
  const begin = '<!-- bench:begin -->';
  const end = '<!-- bench:end -->';
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) {
    log(`docs/performance.md has no ${begin} … ${end} markers: table not written there`);
  } else {
    writeFileSync(docPath, `${doc.slice(0, i + begin.length)}\n${md}\n${doc.slice(j)}`);
    log('table written into docs/performance.md');
  }
}
log(`done in ${results.durationS} s; results in bench-results/${stamp}.json`);
process.exit(failed ? 1 : 0);
