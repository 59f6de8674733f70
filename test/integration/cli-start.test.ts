/**
 * How `jcds` starts (issue 14, "CLI start" and "A build step"), on a copy of the product's
 * sources built with scripts/build.js:
 *
 * - what `jcds --help` and an enqueue load, from the sources and from dist/: help loads
 *   commander and the command definitions only; enqueuing loads ioredis and BullMQ, and
 *   neither the AWS SDK, Bull Board, express, undici nor any worker code;
 * - that bin/jcds.js runs dist/ while it is fresh, the sources once a source file changes,
 *   and dist/ again when the sources are back as built;
 * - that `jcds worker` starts the worker from the same tree as itself, and that a worker
 *   started from dist/ publishes a package (its hash thread, a plain .js file, is there).
 *
 * What a process loads is recorded by a module hook given through NODE_OPTIONS (so the
 * worker the CLI spawns records too): every resolved URL, written when the process exits.
 * Real redis-server and simulator (test/helpers/fleet.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, makeFile, startFleet, type Fleet } from '../helpers/fleet.ts';

/** Packages that neither `jcds --help` nor an enqueue may load. */
const NEVER = ['@aws-sdk', '@smithy', '@bull-board', 'express', 'prom-client', 'pino-pretty'];
/** And more that `jcds --help` may not load. */
const NOT_FOR_HELP = [...NEVER, 'bullmq', 'ioredis', 'undici', 'zod', 'p-retry', 'pino'];

const HOOK = `
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
const seen = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const r = next(specifier, context);
    seen.add(r.url);
    return r;
  },
});
process.on('exit', () => {
  const dir = process.env.JCDS_TEST_LOADED_DIR;
  if (dir) writeFileSync(dir + '/' + process.pid + '-' + threadId + '.txt', [process.argv[1], ...seen].join('\\n'));
});
`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What each process (and thread) resolved, keyed by its entry script. */
  loaded: Array<{ entry: string; urls: string[] }>;
}

let fleet: Fleet;
/** The copy of the product's sources that is built. */
let copy: string;
let hook: string;
/** `JCDS_DEBUG=1 jcds --version` in the copy before its build. */
let beforeBuild: Run;
let runs = 0;
/** The source file the staleness test edits, and its modification time (s) at the build. */
const EDITED = 'shared/units.ts';
const EDITED_AT = Math.floor(Date.now() / 1000) - 3600;

function baseEnv(): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' };
}

interface Started {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  done: Promise<Run>;
}

/** `node ENTRY ARGS` with the loading hook. */
function start(
  entry: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Started {
  const dir = join(copy, '..', `loaded-${++runs}`);
  mkdirSync(dir);
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: copy,
    env: { ...env, NODE_OPTIONS: `--import=${hook}`, JCDS_TEST_LOADED_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`node ${entry} ${args.join(' ')} did not end in ${timeoutMs} ms:\n${stderr}`),
      );
    }, timeoutMs);
    child.once('exit', code => {
      clearTimeout(timer);
      const loaded = readdirSync(dir).map(f => {
        const [first, ...urls] = readFileSync(join(dir, f), 'utf8').split('\n');
        return { entry: first ?? '', urls };
      });
      resolve({ code, stdout, stderr, loaded });
    });
  });
  return { child, output: () => stdout + stderr, done };
}

function run(
  entry: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs?: number,
): Promise<Run> {
  return start(entry, args, env, timeoutMs).done;
}

/** Waits until `p` has printed `text`. */
async function waitFor(p: Started, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!p.output().includes(text)) {
    if (p.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`no "${text}" in:\n${p.output()}`);
    await new Promise(r => setTimeout(r, 50));
  }
}

/** The packages (node_modules/NAME) among `urls`. */
function packages(urls: string[]): Set<string> {
  const out = new Set<string>();
  for (const u of urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
    if (m) out.add(m[1]!);
  }
  return out;
}

/** The product's own files among `urls`, relative to the copy. */
function own(urls: string[]): string[] {
  const base = `file://${copy}/`;
  return urls
    .filter(u => u.startsWith(base) && !u.includes('/node_modules/'))
    .map(u => u.slice(base.length));
}

/** The one process of `r` that ran `entry` (the CLI, not the worker it spawned). */
function processOf(r: Run, entry: string): string[] {
  const found = r.loaded.filter(l => l.entry === entry);
  expect(found.map(l => l.entry)).toEqual([entry]);
  return found[0]!.urls;
}

function expectNone(urls: string[], names: string[]): void {
  const pkgs = packages(urls);
  const banned = names.filter(n => [...pkgs].some(p => p === n || p.startsWith(`${n}/`)));
  expect(banned, `loaded: ${[...pkgs].join(', ')}`).toEqual([]);
}

beforeAll(async () => {
  fleet = await startFleet();
  const dir = mkdtempSync(join(tmpdir(), 'jcds-cli-start-'));
  copy = join(dir, 'app');
  mkdirSync(copy);
  for (const f of [
    'producer',
    'shared',
    'worker',
    'bin',
    'scripts/build.js',
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
  ]) {
    cpSync(join(ROOT, f), join(copy, f), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  utimesSync(join(copy, EDITED), EDITED_AT, EDITED_AT);
  hook = join(dir, 'hook.mjs');
  writeFileSync(hook, HOOK);
  beforeBuild = await run(join(copy, 'bin/jcds.js'), ['--version'], {
    ...baseEnv(),
    JCDS_DEBUG: '1',
  });
  const build = await run(join(copy, 'scripts/build.js'), [], baseEnv(), 170_000);
  if (build.code !== 0) throw new Error(`scripts/build.js failed:\n${build.stdout}${build.stderr}`);
}, 240_000);

afterAll(async () => {
  await fleet?.close();
  if (copy) rmSync(join(copy, '..'), { recursive: true, force: true });
});

describe('the build', () => {
  it('compiles producer/, shared/ and worker/ to dist/ with the plain .js thread script', () => {
    expect(beforeBuild.code).toBe(0);
    expect(beforeBuild.stderr).toContain('dist/ is missing: running the TypeScript sources');
    for (const f of [
      'producer/cli/main.js',
      'producer/cli/commands/upload.js',
      'worker/main.js',
      'worker/monitor/main.js',
      'shared/hash/hash-thread.js',
      '.build.json',
    ]) {
      expect(existsSync(join(copy, 'dist', f)), f).toBe(true);
    }
    // Relative imports point at .js files (tsc's rewriteRelativeImportExtensions).
    const main = readFileSync(join(copy, 'dist/producer/cli/main.js'), 'utf8');
    expect(main).toContain('./program.js');
    expect(main).not.toMatch(/from '\.[^']*\.ts'/);
    // Nothing of the tests is built.
    expect(existsSync(join(copy, 'dist/test'))).toBe(false);
  });

  it('runs dist/ while it is fresh, the sources after an edit, and dist/ once they are back', async () => {
    const jcds = join(copy, 'bin/jcds.js');
    const env = { ...baseEnv(), JCDS_DEBUG: '1' };
    const mode = async (): Promise<string> => {
      const r = await run(jcds, ['--version'], env);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('0.1.0');
      const urls = own(processOf(r, jcds));
      if (urls.includes('dist/producer/cli/main.js')) {
        expect(urls.filter(u => u.endsWith('.ts'))).toEqual([]);
        expect(r.stderr).not.toContain('running the TypeScript sources');
        return 'dist';
      }
      expect(urls).toContain('producer/cli/main.ts');
      expect(r.stderr).toContain('dist/ is stale: running the TypeScript sources');
      return 'sources';
    };
    expect(await mode()).toBe('dist');

    // An edit (a new modification time) makes dist/ stale. (Its time before the build was
    // a whole second, which utimes can set back exactly.)
    const edited = join(copy, EDITED);
    expect(statSync(edited).mtimeMs).toBe(EDITED_AT * 1000);
    utimesSync(edited, EDITED_AT + 5, EDITED_AT + 5);
    expect(await mode()).toBe('sources');
    utimesSync(edited, EDITED_AT, EDITED_AT);
    expect(await mode()).toBe('dist');

    // So does a new source file, until it is gone again.
    const added = join(copy, 'worker/added.ts');
    writeFileSync(added, 'export const added = 1;\n');
    expect(await mode()).toBe('sources');
    unlinkSync(added);
    expect(await mode()).toBe('dist');
  });
});

describe('jcds --help', () => {
  for (const from of ['dist', 'sources'] as const) {
    it(`loads commander and the command definitions only (from ${from})`, async () => {
      const entry = join(copy, from === 'dist' ? 'bin/jcds.js' : 'producer/cli/main.ts');
      const r = await run(entry, ['--help'], baseEnv());
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('Usage: jcds [options] [command]');
      expect(r.stderr).toContain('upload [options] <file...>');
      const urls = processOf(r, entry);
      expectNone(urls, NOT_FOR_HELP);
      expect([...packages(urls)]).toEqual(['commander']);
      const files = own(urls);
      expect(files.some(f => f.startsWith(from === 'dist' ? 'dist/' : 'producer/'))).toBe(true);
      expect(files.filter(f => f.includes('worker/'))).toEqual([]);
      expect(files.filter(f => /producer\/(producer|doctor\/run)\./.test(f))).toEqual([]);
    });
  }
});

describe('jcds upload FILE (enqueue only)', () => {
  for (const from of ['dist', 'sources'] as const) {
    it(`loads ioredis and BullMQ, no AWS SDK, Bull Board or worker code (from ${from})`, async () => {
      const entry = join(copy, from === 'dist' ? 'bin/jcds.js' : 'producer/cli/main.ts');
      const file = await makeFile(fleet.dir, `Start-${from}.pkg`, 64 * 1024);
      const r = await run(entry, ['upload', file.path, '--json'], {
        ...baseEnv(),
        REDIS_URL: fleet.env['REDIS_URL']!,
      });
      expect(r.code, r.stderr).toBe(0);
      const events = r.stdout
        .trim()
        .split('\n')
        .map(l => JSON.parse(l) as Record<string, unknown>);
      expect(events[0]).toMatchObject({ event: 'enqueued', queue: 'upload', created: true });
      expect(events.at(-1)).toMatchObject({ event: 'summary', enqueued: 1, waited: false });
      const job = await fleet.queue('upload').getJob(String(events[0]!['jobId']));
      expect(job?.data).toMatchObject({ fileName: `Start-${from}.pkg` });
      const urls = processOf(r, entry);
      const pkgs = packages(urls);
      expect(pkgs.has('bullmq') && pkgs.has('ioredis')).toBe(true);
      expectNone(urls, [...NEVER, 'undici', 'cli-progress']);
      const files = own(urls);
      expect(files.filter(f => f.includes('worker/'))).toEqual([]);
      // Without --wait, none of the progress views.
      expect(files.filter(f => /producer\/cli\/(wait|views|board|follow)\./.test(f))).toEqual([]);
      await job?.remove();
    });
  }
});

describe('jcds worker', () => {
  it('from dist/ runs dist/worker/main.js, which publishes a package', async () => {
    const jcds = join(copy, 'bin/jcds.js');
    const file = await makeFile(fleet.dir, 'FromDist.pkg', 3 * 1024 * 1024);
    const env = { ...baseEnv(), ...fleet.env };
    const worker = start(jcds, ['worker', '--concurrency', '1'], env, 150_000);
    await waitFor(worker, 'worker ready');
    const upload = await run(jcds, ['upload', file.path, '--wait', '--json'], env, 120_000);
    const summary = JSON.parse(upload.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(summary, upload.stderr).toMatchObject({ event: 'summary', completed: 1, failed: 0 });
    worker.child.kill('SIGTERM');
    const done = await worker.done;
    expect(done.code).toBe(0);
    const entries = done.loaded.map(l => l.entry);
    const child = done.loaded.find(l => l.entry === join(copy, 'dist/worker/main.js'));
    expect(child, entries.join(', ')).toBeDefined();
    expect(own(child!.urls).filter(f => f.endsWith('.ts'))).toEqual([]);
    // Nor did any other process or thread of it (the hash threads run dist/'s .js file).
    for (const l of done.loaded) expect(own(l.urls).filter(f => f.endsWith('.ts'))).toEqual([]);
  });

  it('from the sources runs worker/main.ts', async () => {
    const worker = start(join(copy, 'producer/cli/main.ts'), ['worker'], {
      ...baseEnv(),
      ...fleet.env,
    });
    await waitFor(worker, 'worker ready');
    worker.child.kill('SIGTERM');
    const r = await worker.done;
    expect(r.code).toBe(0);
    expect(r.loaded.map(l => l.entry)).toContain(join(copy, 'worker/main.ts'));
    expect(r.loaded.map(l => l.entry)).not.toContain(join(copy, 'dist/worker/main.js'));
  });
});
