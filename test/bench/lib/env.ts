/**
 * The benchmark's environment: one spawned redis-server and one simulator (its S3 is the
 * endpoint every client is measured against), worker processes started per scenario,
 * a Jamf client, and helpers for JCDS temporary credentials: an S3 client, presigned URLs
 * and the AWS_* environment for awscli/boto3.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { Producer } from '../../../producer/producer.ts';
import { JamfClient } from '../../../shared/jamf/client.ts';
import type { JcdsCredentials } from '../../../shared/jamf/types.ts';
import { QUEUES } from '../../../shared/queues/names.ts';
import { createS3Client } from '../../../shared/s3/client.ts';
import { startFleet, type Fleet, type WorkerProcess } from '../../helpers/fleet.ts';

export interface BenchEnv {
  fleet: Fleet;
  jamf: JamfClient;
  producer: Producer;
  uploadEvents: QueueEvents;
  /** Scratch folder (same disk as the simulator's store). */
  dir: string;
  s3Endpoint: string;
  /** Stops workers that a scenario started (SIGKILL unless told; SIGTERM drains them). */
  stopWorkers(signal?: NodeJS.Signals): Promise<void>;
  startWorkers(n: number, extraEnv?: Record<string, string>): Promise<WorkerProcess[]>;
  creds(): Promise<Creds>;
  close(): Promise<void>;
}

/** JCDS temporary credentials with an S3 client and the key prefix. */
export interface Creds {
  raw: JcdsCredentials;
  bucket: string;
  /** `path` (ends with "/"): the S3 key is path + fileName. */
  path: string;
  region: string;
  s3: S3Client;
  /** Environment for /usr/bin/aws and /usr/bin/python3 (boto3): nothing inherited. */
  awsEnv: NodeJS.ProcessEnv;
  presignGet(key: string): Promise<string>;
  presignPut(key: string): Promise<string>;
}

/** Worker settings for measuring: production lock/stall timings, the s3 transport. */
export const WORKER_ENV: Record<string, string> = {
  JCDS_TRANSPORT: 's3',
  JCDS_LOCK_DURATION: '60000',
  JCDS_STALLED_INTERVAL: '30000',
  JCDS_VERIFY_TIMEOUT: '900000',
  LOG_LEVEL: 'info',
};

/** An S3 client on JCDS temporary credentials, against `endpoint` (the simulator's S3). */
export function jcdsS3(c: JcdsCredentials, endpoint: string): S3Client {
  return createS3Client({
    region: c.region,
    endpoint,
    credentials: {
      accessKeyId: c.accessKeyID,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
    },
  });
}

/** The bench's view of one set of JCDS credentials and an S3 client on them. */
export function credsFrom(c: JcdsCredentials, s3: S3Client, awsEnv: NodeJS.ProcessEnv): Creds {
  return {
    raw: c,
    bucket: c.bucketName,
    path: c.path,
    region: c.region,
    s3,
    awsEnv,
    ...presigners(s3, c.bucketName),
  };
}

/** Presigned GET and PUT URLs (an hour) for keys of `bucket`. */
export function presigners(s3: S3Client, bucket: string): Pick<Creds, 'presignGet' | 'presignPut'> {
  return {
    presignGet: key =>
      getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 3600 }),
    presignPut: key =>
      getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 3600 }),
  };
}

export async function startBenchEnv(): Promise<BenchEnv> {
  const fleet = await startFleet({
    env: WORKER_ENV,
    simArgs: ['--credential-ttl', '21600', '--log-level', 'info'],
  });
  const info = fleet.sim.info;
  const jamf = new JamfClient({
    baseUrl: info.jamfUrl,
    auth: { kind: 'oauth', id: info.clientId, secret: info.clientSecret },
  });
  const producer = await Producer.connect({ redisUrl: fleet.redis.url });
  const uploadEvents = await fleet.events(QUEUES.upload);
  const awsConfig = join(fleet.dir, 'aws-config');
  writeFileSync(awsConfig, '[default]\n');
  const clients: S3Client[] = [];

  const creds = async (): Promise<Creds> => {
    const c = await jamf.createJcdsFile();
    const s3 = jcdsS3(c, info.s3Endpoint);
    clients.push(s3);
    return credsFrom(
      c,
      s3,
      awsEnvFor(
        {
          accessKeyId: c.accessKeyID,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
          region: c.region,
        },
        awsConfig,
      ),
    );
  };

  let scenarioWorkers: WorkerProcess[] = [];
  const stopWorkers = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    await Promise.all(scenarioWorkers.map(w => w.kill(signal)));
    scenarioWorkers = [];
  };

  return {
    fleet,
    jamf,
    producer,
    uploadEvents,
    dir: fleet.dir,
    s3Endpoint: info.s3Endpoint,
    creds,
    startWorkers: async (n, extraEnv = {}) => {
      const started: WorkerProcess[] = [];
      for (let i = 0; i < n; i++) started.push(await fleet.startWorker(extraEnv));
      scenarioWorkers.push(...started);
      return started;
    },
    stopWorkers,
    close: async () => {
      await stopWorkers();
      for (const c of clients) c.destroy();
      await producer.close().catch(() => undefined);
      await jamf.close().catch(() => undefined);
      await fleet.close();
    },
  };
}

/** AWS_* environment for awscli v2 and boto3 with static credentials; nothing inherited. */
export function awsEnvFor(
  c: { accessKeyId: string; secretAccessKey: string; sessionToken?: string; region: string },
  configFile: string,
): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/root',
    LANG: 'C.UTF-8',
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    ...(c.sessionToken ? { AWS_SESSION_TOKEN: c.sessionToken } : {}),
    AWS_DEFAULT_REGION: c.region,
    AWS_REGION: c.region,
    AWS_CONFIG_FILE: configFile,
    AWS_SHARED_CREDENTIALS_FILE: `${configFile}.credentials`,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  };
}
