#!/usr/bin/env node
// The `jcds` command. It runs dist/, the `tsc` build that `npm ci` makes (scripts/build.js),
// when that build is fresh, and otherwise the TypeScript sources themselves through Node's
// built-in type stripping (Node >= 22.18; undici asks for 22.19): a checkout without a
// build, or one whose sources were edited since (bin/dist.js compares their fingerprint).
// The build starts faster (no type stripping: issue 14's "CLI start") and lighter.
//
// The version check comes first, in JavaScript that any Node parses: an older Node would
// otherwise fail on the .ts import below with a stack trace (ERR_UNKNOWN_FILE_EXTENSION).
const [major, minor] = process.versions.node.split('.').map(Number);
if (!(major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 19))) {
  const viaNpm = process.env.npm_lifecycle_event !== undefined;
  process.stderr.write(
    `jcds needs Node >= 22.19 (this is ${process.version}): ` +
      (viaNpm
        ? '`npm ci` installed no Node for this platform, so install Node 24 (macOS: `brew install node`)\n'
        : 'run it through `npm run jcds -- …` in the checkout after `npm ci` (which brings Node 24), or install Node 24\n'),
  );
  process.exit(3);
}
const { CLI_BUILT, CLI_SOURCE, distState } = await import('./dist.js');
const { fileURLToPath, URL } = await import('node:url');
const state = distState(fileURLToPath(new URL('../', import.meta.url)));
if (state !== 'fresh' && process.env.JCDS_DEBUG) {
  process.stderr.write(
    `jcds: dist/ is ${state}: running the TypeScript sources (\`npm run build\` makes it fresh)\n`,
  );
}
await import(
  new URL(state === 'fresh' ? `../dist/${CLI_BUILT}` : `../${CLI_SOURCE}`, import.meta.url).href
);
