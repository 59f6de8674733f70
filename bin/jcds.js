#!/usr/bin/env node
// The `jcds` command. The sources are TypeScript run by Node's built-in type stripping
// (Node >= 22.18; undici asks for 22.19), so there is no build step between a change and
// the command.
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
await import('../producer/cli/main.ts');
