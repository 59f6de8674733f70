// Whether dist/ (the `tsc` build of producer/, shared/ and worker/, scripts/build.js) may be
// run instead of the TypeScript sources. Plain JavaScript that any Node >= 14 runs: the build
// runs it during `npm ci`, possibly on an old system Node, and bin/jcds.js at every start.
//
// dist/.build.json records a fingerprint of the sources it was compiled from: every file's
// path, size and modification time under producer/, shared/ and worker/, and the tsconfig
// files. dist/ is fresh while the sources still have that fingerprint; an edited, added or
// removed source file makes it stale, and the sources run instead (always correct, only
// slower to start) until `npm run build`. Computing it is about 150 stat calls: ~1 ms.
// Without the sources (a Docker image holds dist/ alone) dist/ is what there is.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const SOURCE_DIRS = ['producer', 'shared', 'worker'];
export const CONFIG_FILES = ['tsconfig.json', 'tsconfig.build.json'];
export const STAMP = '.build.json';
/** The CLI's entry, relative to the checkout and to dist/. */
export const CLI_SOURCE = 'producer/cli/main.ts';
export const CLI_BUILT = 'producer/cli/main.js';

/** Every file under the source folders, as `path size mtime` lines, sorted. */
export function sourceFingerprint(root) {
  const lines = [];
  const walk = rel => {
    let entries;
    try {
      entries = readdirSync(join(root, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(path);
      else if (e.isFile()) lines.push(line(root, path));
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  for (const f of CONFIG_FILES) if (existsSync(join(root, f))) lines.push(line(root, f));
  return lines.sort().join('\n');
}

function line(root, path) {
  try {
    const st = statSync(join(root, path));
    return `${path} ${st.size} ${st.mtimeMs}`;
  } catch {
    return `${path} gone`; // removed meanwhile: not what was built
  }
}

/**
 * `fresh` (run dist/), `stale` (a source changed since the build: run the sources) or
 * `missing` (never built, or no TypeScript to build it with: run the sources).
 */
export function distState(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, 'dist', STAMP), 'utf8'));
  } catch {
    return 'missing';
  }
  if (!existsSync(join(root, CLI_SOURCE))) return 'fresh';
  return stamp.sources === sourceFingerprint(root) ? 'fresh' : 'stale';
}
