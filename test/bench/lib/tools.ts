/**
 * The external tools the bench compares the fleet with, probed once at the start: awscli,
 * a python3 with boto3 and with requests, curl, and Swift (its own section). Each is found
 * on PATH; pyenv shims are passed over, since they stand for whatever version pyenv selects
 * (on the project machine, one without boto3), and Debian's packages are what the figures
 * are taken with. A tool that is missing or does not run marks the rows that need it
 * "skipped: <tool> missing — install with `<command>`"; the rest of the bench runs.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { run } from './measure.ts';

export type Tool = 'aws' | 'python3' | 'boto3' | 'requests' | 'curl';

export interface Tools {
  /** Absolute paths of the tools found (python3's also when a module is missing). */
  aws?: string;
  python3?: string;
  curl?: string;
  boto3: boolean;
  requests: boolean;
  /** The tools missing (or not working), each with why, and the command that installs it. */
  missing: Partial<Record<Tool, { why: string; install: string }>>;
}

/** How each tool is installed: scripts/ensure-deps.sh's item, and the Debian package. */
export const INSTALL: Record<Tool, { item: string; apt: string }> = {
  aws: { item: 'aws', apt: 'awscli' },
  python3: { item: 'boto3 requests', apt: 'python3 python3-boto3 python3-requests' },
  boto3: { item: 'boto3', apt: 'python3-boto3' },
  requests: { item: 'requests', apt: 'python3-requests' },
  curl: { item: 'curl', apt: 'curl' },
};

/** `bash scripts/ensure-deps.sh aws` (Debian: `apt-get install -y awscli`) */
export function installCommand(tool: Tool): string {
  const i = INSTALL[tool];
  return `\`bash scripts/ensure-deps.sh ${i.item}\` (Debian: \`apt-get install -y ${i.apt}\`)`;
}

/** Executable `name` in the directories of `path`, pyenv shims passed over. */
export function findOnPath(name: string, path = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir || /[\\/]\.pyenv[\\/]/.test(dir)) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

const PLAIN_ENV = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' };

async function works(cmd: string, args: string[]): Promise<boolean> {
  try {
    await run(cmd, args, { env: PLAIN_ENV, timeoutMs: 60_000 });
    return true;
  } catch {
    return false;
  }
}

export async function probeTools(): Promise<Tools> {
  const t: Tools = { boto3: false, requests: false, missing: {} };
  const miss = (tool: Tool, why: string): void => {
    t.missing[tool] = { why, install: installCommand(tool) };
  };
  const aws = findOnPath('aws');
  if (!aws) miss('aws', 'no aws on PATH');
  else if (await works(aws, ['--version'])) t.aws = aws;
  else miss('aws', `${aws} --version fails`);
  const python = findOnPath('python3');
  if (!python) {
    miss('python3', 'no python3 on PATH');
    miss('boto3', 'no python3');
    miss('requests', 'no python3');
  } else {
    t.python3 = python;
    t.boto3 = await works(python, ['-c', 'import boto3']);
    if (!t.boto3) miss('boto3', `${python} cannot import boto3`);
    t.requests = await works(python, ['-c', 'import requests']);
    if (!t.requests) miss('requests', `${python} cannot import requests`);
  }
  const curl = findOnPath('curl');
  if (!curl) miss('curl', 'no curl on PATH');
  else if (await works(curl, ['--version'])) t.curl = curl;
  else miss('curl', `${curl} --version fails`);
  return t;
}

/** The first of `needs` that is missing, as a row's text; undefined when all are there. */
export function skipReason(tools: Tools, needs: Tool[]): string | undefined {
  for (const n of needs) {
    const m = tools.missing[n];
    if (m) return `skipped: ${n} missing (${m.why}) — install with ${m.install}`;
  }
  return undefined;
}

/** The tools this run lacks, for the summary line: `aws, requests`. */
export function missingList(tools: Tools): string[] {
  return Object.keys(tools.missing);
}

/** Throws when a tool is missing (for code that runs it outside a skippable row). */
export function need(tools: Tools, tool: 'aws' | 'python3' | 'curl'): string {
  const p = tools[tool];
  if (!p) throw new Error(skipReason(tools, [tool]) ?? `${tool} missing`);
  return p;
}
