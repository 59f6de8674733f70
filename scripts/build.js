// `npm run build`, also run by `npm ci` / `npm install` (package.json's "prepare"): compiles
// producer/, shared/ and worker/ to dist/ with tsc (tsconfig.build.json), copies the files
// that are not TypeScript (hash-thread.js and any other asset that code finds with
// `new URL(..., import.meta.url)`), and records the sources' fingerprint in
// dist/.build.json last, so a dist/ is only used once it is complete (bin/dist.js).
//
// Plain JavaScript that any Node >= 14 runs, as tsc does: npm may run it on the system's
// Node (Debian 12's is 18) rather than the Node 24 that `npm ci` installs. Without
// TypeScript (`npm ci --omit=dev`) it builds nothing and says so: the command then runs
// the sources, as it does whenever dist/ is stale.
//
// The new tree is built beside dist/ and swapped in, so a `jcds` running meanwhile keeps a
// whole tree under it.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_BUILT, SOURCE_DIRS, STAMP, sourceFingerprint } from '../bin/dist.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const say = text => console.log(`build: ${text}`);

let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  say('TypeScript is not installed (npm ci --omit=dev?): no dist/; `jcds` runs the sources');
  process.exit(0);
}

const started = Date.now();
// Taken before compiling: a file edited during the build leaves dist/ stale, not wrong.
const sources = sourceFingerprint(root);
const out = join(root, `dist.new-${process.pid}`);
rmSync(out, { recursive: true, force: true });
const r = spawnSync(
  process.execPath,
  [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out],
  { cwd: root, stdio: 'inherit' },
);
// tsc's exit 2 is "type errors, output written": the JavaScript is what Node's type
// stripping would run from the sources, so it is kept (`npm test` fails on the errors).
if (r.status === 2 && existsSync(join(out, CLI_BUILT))) {
  console.error(
    'build: tsc reported the type errors above (`npm run typecheck`); dist/ was emitted anyway',
  );
} else if (r.status !== 0) {
  rmSync(out, { recursive: true, force: true });
  console.error(
    `build: tsc failed (exit ${r.status ?? r.signal}); fix the errors above and run \`npm run build\``,
  );
  process.exit(1);
}

let assets = 0;
const copyAssets = rel => {
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const path = `${rel}/${e.name}`;
    if (e.isDirectory()) copyAssets(path);
    else if (e.isFile() && !e.name.endsWith('.ts')) {
      mkdirSync(join(out, rel), { recursive: true });
      copyFileSync(join(root, path), join(out, path));
      assets++;
    }
  }
};
for (const dir of SOURCE_DIRS) if (existsSync(join(root, dir))) copyAssets(dir);
// package.json's "type": "module" makes the .js files ES modules, from dist/ as from the root.
writeFileSync(join(out, STAMP), `${JSON.stringify({ version: 1, sources })}\n`);

const dist = join(root, 'dist');
const old = join(root, `dist.old-${process.pid}`);
if (existsSync(dist)) renameSync(dist, old);
renameSync(out, dist);
rmSync(old, { recursive: true, force: true });
say(`dist/ built in ${((Date.now() - started) / 1000).toFixed(1)} s (${assets} asset(s) copied)`);
