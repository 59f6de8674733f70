/**
 * The simulator's command line: `npm run sim -- --port P` (P=0: a free port). The first
 * stdout line is one JSON object (jamfUrl, s3Endpoint, clientId, clientSecret, username,
 * password, controlUrl, bucket, region, jcdsPath (the prefix `tmp/` of every JCDS
 * credentials' path), dataDir, pid); nothing else goes to stdout. Logs go to stderr.
 * SIGTERM/SIGINT close both servers and exit 0.
 */
import { Command, InvalidArgumentError } from 'commander';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createLogger } from '../../shared/logger.ts';
import {
  CDN_TYPES,
  DOWNLOAD_URL_FORMS,
  type CdnType,
  type DownloadUrlForm,
} from './jamf/context.ts';
import {
  DEFAULT_BUCKET,
  DEFAULT_CLIENT_ID,
  DEFAULT_CLIENT_SECRET,
  DEFAULT_PASSWORD,
  DEFAULT_REGION,
  DEFAULT_USERNAME,
  startSimulator,
} from './server.ts';

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function positiveInt(value: string): number {
  const n = nonNegativeInt(value);
  if (n === 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function downloadUrlForm(value: string): DownloadUrlForm {
  if (!(DOWNLOAD_URL_FORMS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${DOWNLOAD_URL_FORMS.join(', ')}`);
  }
  return value as DownloadUrlForm;
}

function cdnType(value: string): CdnType {
  if (!(CDN_TYPES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${CDN_TYPES.join(', ')}`);
  }
  return value as CdnType;
}

const program = new Command()
  .name('jcds-sim')
  .description('Jamf Pro + JCDS simulator (a test double) on 127.0.0.1')
  .option('--port <port>', 'Jamf Pro port (0: a free port)', nonNegativeInt, 0)
  .option('--s3-port <port>', 'S3 port (0: a free port)', nonNegativeInt, 0)
  .option('--data-dir <dir>', 'where packages, objects and credentials are kept', '.data/sim')
  .option('--token-ttl <seconds>', 'user token lifetime (default: 1800)', positiveInt)
  .option(
    '--oauth-ttl <seconds>',
    'OAuth token lifetime and expires_in (default: --token-ttl if given, else 60 s answered as expires_in 59)',
    positiveInt,
  )
  .option('--credential-ttl <seconds>', 'JCDS temporary S3 credential lifetime', positiveInt, 3600)
  .option(
    '--download-url-ttl <seconds>',
    'lifetime of the download URLs GET /api/v1/jcds/files/{fileName} hands out (default: 300)',
    positiveInt,
  )
  .option('--presign-ttl <seconds>', 'the former name of --download-url-ttl', positiveInt)
  .option(
    '--download-url-form <form>',
    'download URL form: cloudfront (default) or s3-presigned (the pre-2026 simulator)',
    downloadUrlForm,
  )
  .option(
    '--processing-ms <ms>',
    "delay from an upload (or a new JCDS object) to Jamf's processing of it",
    nonNegativeInt,
    300,
  )
  .option('--cdn-type <type>', 'cloud distribution point: JAMF_CLOUD, AWS or NONE', cdnType)
  .option('--deprecation-header', 'send Deprecation: date="2025-08-28T00:00:00Z" on /api/v1/jcds/*')
  .option('--no-jcds', 'answer every /api/v1/jcds/* endpoint with 404')
  .option(
    '--no-package-sha256',
    'package records carry no sha256 (a tenant that does not fill it; also JCDS_SIM_PACKAGE_SHA256=0)',
  )
  .option('--client-id <id>', 'OAuth client id', DEFAULT_CLIENT_ID)
  .option('--client-secret <secret>', 'OAuth client secret', DEFAULT_CLIENT_SECRET)
  .option('--username <name>', 'user account for /api/v1/auth/token', DEFAULT_USERNAME)
  .option('--password <password>', 'user account password', DEFAULT_PASSWORD)
  .option('--bucket <name>', 'JCDS bucket name', DEFAULT_BUCKET)
  .option('--region <region>', 'JCDS region', DEFAULT_REGION)
  .option('--log-level <level>', 'pino level', process.env['LOG_LEVEL'] ?? 'info')
  .option('--host <address>', 'address to listen on (0.0.0.0 in a container)', '127.0.0.1')
  .option('--public-host <name>', 'host name clients use in the URLs handed out (default: --host)')
  .option('--exit-on-stdin-close', 'shut down when stdin closes (the test harness sets it)')
  .parse();

interface CliOptions {
  port: number;
  s3Port: number;
  dataDir: string;
  tokenTtl?: number;
  oauthTtl?: number;
  credentialTtl: number;
  downloadUrlTtl?: number;
  presignTtl?: number;
  downloadUrlForm?: DownloadUrlForm;
  processingMs: number;
  cdnType?: CdnType;
  deprecationHeader?: boolean;
  jcds: boolean;
  packageSha256: boolean;
  clientId: string;
  clientSecret: string;
  username: string;
  password: string;
  bucket: string;
  region: string;
  logLevel: string;
  host: string;
  publicHost?: string;
  exitOnStdinClose?: boolean;
}

const opts = program.opts<CliOptions>();
const logger = createLogger({ name: 'jcds-sim', level: opts.logLevel });
const dataDir = resolve(opts.dataDir);
mkdirSync(dataDir, { recursive: true });

const sim = await startSimulator({
  dataDir,
  port: opts.port,
  s3Port: opts.s3Port,
  ...(opts.tokenTtl === undefined ? {} : { tokenTtlSeconds: opts.tokenTtl }),
  ...(opts.oauthTtl === undefined ? {} : { oauthTtlSeconds: opts.oauthTtl }),
  credentialTtlSeconds: opts.credentialTtl,
  ...(opts.downloadUrlTtl === undefined ? {} : { downloadUrlTtlSeconds: opts.downloadUrlTtl }),
  ...(opts.presignTtl === undefined ? {} : { presignTtlSeconds: opts.presignTtl }),
  ...(opts.downloadUrlForm === undefined ? {} : { downloadUrlForm: opts.downloadUrlForm }),
  processingMs: opts.processingMs,
  ...(opts.cdnType === undefined ? {} : { cdnType: opts.cdnType }),
  deprecationHeader: opts.deprecationHeader ?? false,
  jcds: opts.jcds,
  packageSha256: opts.packageSha256 && process.env['JCDS_SIM_PACKAGE_SHA256'] !== '0',
  clientId: opts.clientId,
  clientSecret: opts.clientSecret,
  username: opts.username,
  password: opts.password,
  bucket: opts.bucket,
  region: opts.region,
  host: opts.host,
  ...(opts.publicHost === undefined ? {} : { publicHost: opts.publicHost }),
  logger,
});

process.stdout.write(
  `${JSON.stringify({
    jamfUrl: sim.jamfUrl,
    s3Endpoint: sim.s3Endpoint,
    clientId: sim.clientId,
    clientSecret: sim.clientSecret,
    username: sim.username,
    password: sim.password,
    controlUrl: sim.controlUrl,
    bucket: sim.bucket,
    region: sim.region,
    jcdsPath: sim.jcdsPath,
    dataDir,
    pid: process.pid,
  })}\n`,
);

let stopping = false;
const shutdown = (reason: string): void => {
  if (stopping) return;
  stopping = true;
  logger.info({ reason }, 'simulator shutting down');
  const force = setTimeout(() => process.exit(0), 5000);
  force.unref();
  sim.close().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'simulator shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (opts.exitOnStdinClose) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}
