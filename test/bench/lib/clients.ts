/**
 * The clients the fleet is compared with, each moving one whole file against an S3 target:
 * @aws-sdk/lib-storage Upload in this process, awscli v2, boto3 as jamf-pro-sdk-python
 * drives it, curl on presigned URLs, and 20 MiB ranges × 5 over plain HTTP. The external
 * ones are those probed at the start (lib/tools.ts: found on PATH, pyenv shims passed over).
 * Each returns the wall-clock milliseconds of the transfer (child processes: spawn to exit,
 * so interpreter start-up is included) and the CPU its client used (a child's whole
 * process tree; lib-storage: this process).
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { JamfClient } from '../../../shared/jamf/client.ts';
import { createS3Client } from '../../../shared/s3/client.ts';
import { awsEnvFor, jcdsS3, presigners, type Creds } from './env.ts';
import { MiB, run } from './measure.ts';
import { findOnPath, need, type Tools } from './tools.ts';

export const PY_DIR = join(import.meta.dirname, '..', 'py');

/** Wall-clock ms of one transfer and the CPU ms its client used (a process tree's, or ours). */
export interface Timed {
  ms: number;
  cpuMs: number;
}

let tools: Tools | undefined;
/** The tools probed at the start (lib/tools.ts); the clients below run these. */
export function useTools(t: Tools): void {
  tools = t;
}
/** The probed tools; unprobed (the diagnostic tools/), each is taken from PATH as it is. */
export function currentTools(): Tools {
  return (
    tools ?? {
      aws: findOnPath('aws') ?? 'aws',
      python3: findOnPath('python3') ?? 'python3',
      curl: findOnPath('curl') ?? 'curl',
      boto3: true,
      requests: true,
      missing: {},
    }
  );
}
const bin = (tool: 'aws' | 'python3' | 'curl'): string => need(currentTools(), tool);

/** One S3 endpoint with credentials and a bucket/prefix to write under. */
export interface S3Target {
  label: string;
  endpoint: string;
  bucket: string;
  /** Key prefix (JCDS `path`, ends with "/"; may be empty). */
  prefix: string;
  s3: S3Client;
  awsEnv: NodeJS.ProcessEnv;
  presignGet(key: string): Promise<string>;
  presignPut(key: string): Promise<string>;
}

export function simTarget(c: Creds, endpoint: string): S3Target {
  return {
    label: 'simulator',
    endpoint,
    bucket: c.bucket,
    prefix: c.path,
    s3: c.s3,
    awsEnv: c.awsEnv,
    presignGet: key => c.presignGet(key),
    presignPut: key => c.presignPut(key),
  };
}

/** A target with static credentials (Swift s3api: test:tester / testing); creates the bucket. */
export async function staticTarget(options: {
  label: string;
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
  awsConfigFile: string;
}): Promise<S3Target> {
  const s3 = createS3Client({
    region: options.region,
    endpoint: options.endpoint,
    credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
  });
  // A Swift just started may answer 503 until its account/container servers are up.
  for (let attempt = 0; ; attempt++) {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: options.bucket }));
      break;
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') break;
      if (attempt >= 40) throw err;
      await sleep(250);
    }
  }
  return {
    label: options.label,
    endpoint: options.endpoint,
    bucket: options.bucket,
    prefix: '',
    s3,
    awsEnv: awsEnvFor(options, options.awsConfigFile),
    ...presigners(s3, options.bucket),
  };
}

export async function objectSize(t: S3Target, key: string): Promise<number | undefined> {
  const head = await t.s3.send(new HeadObjectCommand({ Bucket: t.bucket, Key: key }));
  return head.ContentLength;
}

/** Checks the stored object has the file's size (a failed or truncated upload is not a figure). */
export async function assertStored(t: S3Target, key: string, size: number): Promise<void> {
  const got = await objectSize(t, key);
  if (got !== size) throw new Error(`${t.label} ${key}: stored ${got} bytes, expected ${size}`);
}

export async function removeObject(t: S3Target, key: string): Promise<void> {
  await t.s3.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: key }));
}

export async function libStorageUpload(
  t: S3Target,
  path: string,
  key: string,
  partSize: number,
  queueSize: number,
): Promise<Timed> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const upload = new Upload({
    client: t.s3,
    params: {
      Bucket: t.bucket,
      Key: key,
      Body: createReadStream(path, { highWaterMark: 1 * MiB }),
    },
    partSize,
    queueSize,
    leavePartsOnError: false,
  });
  await upload.done();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

export async function awsUpload(t: S3Target, path: string, key: string): Promise<Timed> {
  return run(
    bin('aws'),
    ['--endpoint-url', t.endpoint, 's3', 'cp', path, `s3://${t.bucket}/${key}`, '--no-progress'],
    { env: t.awsEnv },
  );
}

export async function awsDownload(t: S3Target, key: string, dest: string): Promise<Timed> {
  return run(
    bin('aws'),
    ['--endpoint-url', t.endpoint, 's3', 'cp', `s3://${t.bucket}/${key}`, dest, '--no-progress'],
    { env: t.awsEnv },
  );
}

export async function boto3Upload(t: S3Target, path: string, key: string): Promise<Timed> {
  return run(
    bin('python3'),
    [
      join(PY_DIR, 'boto3_upload.py'),
      '--endpoint',
      t.endpoint,
      '--bucket',
      t.bucket,
      '--key',
      key,
      '--file',
      path,
      '--part-size',
      String(20 * MiB),
      '--threads',
      '5',
    ],
    { env: t.awsEnv },
  );
}

/** 20 MiB ranges, 5 at a time, written at their offsets (requests, /usr/bin/python3). */
export async function rangedDownload(url: string, dest: string): Promise<Timed> {
  return run(
    bin('python3'),
    [
      join(PY_DIR, 'ranged_download.py'),
      '--url',
      url,
      '--dest',
      dest,
      '--range-size',
      String(20 * MiB),
      '--threads',
      '5',
    ],
    { env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } },
  );
}

/** curl single-stream PUT of a whole file to a presigned URL. */
export async function curlPut(url: string, path: string): Promise<Timed> {
  return run(bin('curl'), ['-sS', '--fail', '-o', '/dev/null', '-T', path, url]);
}

/** curl single-stream GET of a presigned URL to a file (or /dev/null). */
export async function curlGet(url: string, dest: string): Promise<Timed> {
  return run(bin('curl'), ['-sS', '--fail', '-o', dest, url]);
}

export async function toolVersions(t: Tools): Promise<Record<string, string>> {
  const first = async (cmd: string | undefined, args: string[]): Promise<string> => {
    if (!cmd) return 'missing';
    try {
      const r = await run(cmd, args, { env: { PATH: '/usr/bin:/bin' } });
      return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '';
    } catch (err) {
      return `unavailable (${(err as Error).message.split('\n')[0]})`;
    }
  };
  const py = (mod: string): Promise<string> =>
    first(t.python3, ['-c', `import ${mod}; print("${mod}", ${mod}.__version__)`]);
  return {
    node: process.version,
    awscli: await first(t.aws, ['--version']),
    boto3: t.boto3 ? await py('boto3') : 'missing',
    requests: t.requests ? await py('requests') : 'missing',
    curl: await first(t.curl, ['--version']),
    redis: await first('redis-server', ['--version']),
  };
}

/**
 * For the diagnostic tools: a Jamf client on a simulator, fresh JCDS credentials from it,
 * and an S3 client with them (the caller closes both).
 */
export async function simJcds(info: {
  jamfUrl: string;
  s3Endpoint: string;
  clientId: string;
  clientSecret: string;
}) {
  const jamf = new JamfClient({
    baseUrl: info.jamfUrl,
    auth: { kind: 'oauth', id: info.clientId, secret: info.clientSecret },
  });
  const creds = await jamf.createJcdsFile();
  return { jamf, creds, s3: jcdsS3(creds, info.s3Endpoint) };
}
