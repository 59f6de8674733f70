#!/usr/bin/env node
// The `jcds` command. The sources are TypeScript run by Node's built-in type stripping
// (Node >= 22.18), so there is no build step between a change and the command.
await import('../producer/cli/main.ts');
