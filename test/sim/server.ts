/**
 * Wires the simulator together: one DiskObjectStore and one credential registry under the
 * data dir, the live faults and counters objects, the Jamf Pro HTTP server and the S3
 * server, each on its own port on 127.0.0.1.
 *
 * Data dir layout: s3/ (the object store), jamf/ (packages, categories, token secret and
 * revocations), credentials.json (issued S3 credentials), cdn-key.json (the key that signs
 * download URLs).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, type Logger } from '../../shared/logger.ts';
import { CdnSigner } from './cdn.ts';
import { emptyCounters } from './counters.ts';
import { FileCredentialRegistry } from './credentials.ts';
import type { CdnType, DownloadUrlForm } from './jamf/context.ts';
import { createJamfContext, createJamfHandler } from './jamf/index.ts';
import { CREDENTIALS_PATH_PREFIX, newestObject } from './jamf/jcds-files.ts';
import { createS3Server } from './s3/server.ts';
import { DiskObjectStore } from './store.ts';
import type { Counters, Faults } from './types.ts';

export const DEFAULT_CLIENT_ID = 'jcds-sim-client';
export const DEFAULT_CLIENT_SECRET = 'jcds-sim-client-secret';
export const DEFAULT_USERNAME = 'jcds-sim-admin';
export const DEFAULT_PASSWORD = 'jcds-sim-password';
export const DEFAULT_BUCKET = 'jcds-sim-bucket';
export const DEFAULT_REGION = 'us-east-1';
/** Every JCDS credentials' `path` is this + a fresh uuid + "/" (jamf-wire-2026.md 4). */
export const JCDS_PATH = CREDENTIALS_PATH_PREFIX;
export const SIM_VERSION = '11.25.0-sim';

export interface SimulatorOptions {
  dataDir: string;
  /** Jamf port; 0 (default) picks a free one. */
  port?: number;
  /** S3 port; 0 (default) picks a free one. */
  s3Port?: number;
  /** User token lifetime. @defaultValue 1800 */
  tokenTtlSeconds?: number;
  /**
   * OAuth token lifetime and expires_in. @defaultValue tokenTtlSeconds when that is given;
   * else 60 s, answered as `expires_in: 59` as Jamf does (jamf-wire-2026.md 5)
   */
  oauthTtlSeconds?: number;
  /** JCDS temporary S3 credential lifetime. @defaultValue 3600 */
  credentialTtlSeconds?: number;
  /** Download URL (CloudFront form) lifetime. @defaultValue 300 */
  downloadUrlTtlSeconds?: number;
  /** The former name of downloadUrlTtlSeconds (used when that is not given). */
  presignTtlSeconds?: number;
  /** The download URLs' form. @defaultValue `cloudfront` */
  downloadUrlForm?: DownloadUrlForm;
  /** Delay from an upload (or a new JCDS object) to Jamf's processing of it. @defaultValue 300 */
  processingMs?: number;
  /** The cloud distribution point's type. @defaultValue `JAMF_CLOUD` */
  cdnType?: CdnType;
  /** Adds `Deprecation: date="2025-08-28T00:00:00Z"` to the JCDS answers. @defaultValue false */
  deprecationHeader?: boolean;
  /**
   * False: package records carry no `sha256` (a tenant that does not fill it; run-time
   * switchable as the setting packageSha256). @defaultValue true
   */
  packageSha256?: boolean;
  /** False answers every /api/v1/jcds/* with 404. @defaultValue true */
  jcds?: boolean;
  clientId?: string;
  clientSecret?: string;
  username?: string;
  password?: string;
  bucket?: string;
  region?: string;
  logger?: Logger;
  /** Faults in force from the start. */
  faults?: Faults;
  /** Address to listen on. @defaultValue `127.0.0.1` (0.0.0.0 inside a container) */
  host?: string;
  /** Host name clients use in the URLs it hands out (jamfUrl, s3Endpoint, download URLs). */
  publicHost?: string;
}

export interface Simulator {
  jamfUrl: string;
  s3Endpoint: string;
  controlUrl: string;
  clientId: string;
  clientSecret: string;
  username: string;
  password: string;
  bucket: string;
  region: string;
  /** The prefix of every JCDS credentials' `path` (`tmp/`; each path is `tmp/<uuid>/`). */
  jcdsPath: string;
  dataDir: string;
  /** The live objects (the control endpoints change the same ones). */
  faults: Faults;
  counters: Counters;
  close(): Promise<void>;
  /** Closes the S3 server, dropping open connections, and listens again on the same port after downMs. */
  restartS3(downMs?: number): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise(resolve => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export { emptyCounters };

export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const logger =
    options.logger ?? createLogger({ name: 'jcds-sim', level: process.env['LOG_LEVEL'] ?? 'info' });
  const region = options.region ?? DEFAULT_REGION;
  const tokenTtl = options.tokenTtlSeconds ?? 1800;
  // Jamf's OAuth tokens live 60 s and answer expires_in 59 (jamf-wire-2026.md 5); an
  // explicit lifetime (or --token-ttl, which OAuth tokens followed before) is answered as is.
  const oauthExplicit =
    options.oauthTtlSeconds !== undefined || options.tokenTtlSeconds !== undefined;
  const oauthTtl = options.oauthTtlSeconds ?? options.tokenTtlSeconds ?? 60;
  const settings = {
    clientId: options.clientId ?? DEFAULT_CLIENT_ID,
    clientSecret: options.clientSecret ?? DEFAULT_CLIENT_SECRET,
    username: options.username ?? DEFAULT_USERNAME,
    password: options.password ?? DEFAULT_PASSWORD,
    tokenTtlSeconds: tokenTtl,
    oauthTtlSeconds: oauthTtl,
    oauthExpiresInSeconds: oauthExplicit ? oauthTtl : oauthTtl - 1,
    credentialTtlSeconds: options.credentialTtlSeconds ?? 3600,
    downloadUrlTtlSeconds: options.downloadUrlTtlSeconds ?? options.presignTtlSeconds ?? 300,
    downloadUrlForm: options.downloadUrlForm ?? 'cloudfront',
    jcds: options.jcds ?? true,
    bucket: options.bucket ?? DEFAULT_BUCKET,
    region,
    version: SIM_VERSION,
    processingMs: options.processingMs ?? 300,
    cdnType: options.cdnType ?? 'JAMF_CLOUD',
    deprecationHeader: options.deprecationHeader ?? false,
    packageSha256: options.packageSha256 ?? true,
  };
  for (const [name, value] of Object.entries(settings)) {
    if (name === 'processingMs') {
      if (!Number.isFinite(value) || (value as number) < 0) {
        throw new TypeError(`processingMs must be a non-negative number, got ${value}`);
      }
    } else if (typeof value === 'number' && (!Number.isFinite(value) || value <= 0)) {
      throw new TypeError(`${name} must be a positive number, got ${value}`);
    }
  }

  const store = new DiskObjectStore(join(options.dataDir, 's3'), { logger });
  const credentials = new FileCredentialRegistry(options.dataDir);
  const faults: Faults = { ...options.faults };
  const counters = emptyCounters();
  const cdn = new CdnSigner(options.dataDir);
  const jcdsBucket = { store, bucket: settings.bucket };
  // The Jamf side hears of objects stored through S3 (set once its context exists).
  const jamfSide: { onObjectStored?: (bucket: string, key: string) => void } = {};

  const s3Logger = logger.child({ side: 's3' });
  const newS3Server = (): Server =>
    createS3Server({
      store,
      credentials,
      faults,
      counters,
      region,
      logger: s3Logger,
      onObjectStored: (bucket, key) => jamfSide.onObjectStored?.(bucket, key),
      cdn: {
        signer: cdn,
        resolve: async fileName => {
          const o = await newestObject(jcdsBucket, fileName);
          return o && { bucket: o.bucket, key: o.key };
        },
      },
    });
  let s3Server = newS3Server();
  const host = options.host ?? '127.0.0.1';
  const publicHost = options.publicHost ?? (host === '0.0.0.0' ? '127.0.0.1' : host);
  const s3Port = await listen(s3Server, options.s3Port ?? 0, host);
  const s3Endpoint = `http://${publicHost}:${s3Port}`;

  let restarting: Promise<void> = Promise.resolve();
  const restartS3 = (downMs = 0): Promise<void> => {
    restarting = restarting.then(async () => {
      logger.info({ downMs }, 'restarting the S3 server');
      await closeServer(s3Server);
      if (downMs > 0) await sleep(downMs);
      s3Server = newS3Server();
      await listen(s3Server, s3Port, host);
    });
    return restarting;
  };

  const ctx = createJamfContext({
    dataDir: options.dataDir,
    settings,
    store,
    credentials,
    faults,
    counters,
    logger: logger.child({ side: 'jamf' }),
    s3Endpoint: () => s3Endpoint,
    restartS3,
    cdn,
  });
  jamfSide.onObjectStored = (bucket, key) => {
    ctx.processing.objectStored(bucket, key).catch((err: unknown) => {
      logger.warn({ err, key }, 'handling a stored object failed');
    });
  };
  // Processing that was due while the simulator was down is done before it listens again.
  await ctx.processing.recover();
  const handle = createJamfHandler(ctx);
  const jamfServer = createServer({ requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'unhandled error in the Jamf handler');
      res.destroy();
    });
  });
  let jamfPort: number;
  try {
    jamfPort = await listen(jamfServer, options.port ?? 0, host);
  } catch (err) {
    await closeServer(s3Server);
    throw err;
  }
  const jamfUrl = `http://${publicHost}:${jamfPort}`;
  logger.info({ jamfUrl, s3Endpoint, dataDir: options.dataDir }, 'simulator listening');

  let closed: Promise<void> | undefined;
  return {
    jamfUrl,
    s3Endpoint,
    controlUrl: `${jamfUrl}/__sim`,
    clientId: settings.clientId,
    clientSecret: settings.clientSecret,
    username: settings.username,
    password: settings.password,
    bucket: settings.bucket,
    region,
    jcdsPath: JCDS_PATH,
    dataDir: options.dataDir,
    faults,
    counters,
    restartS3,
    close: () => {
      closed ??= (async () => {
        await restarting.catch(() => undefined);
        await Promise.all([closeServer(jamfServer), closeServer(s3Server)]);
        await ctx.processing.close();
      })();
      return closed;
    },
  };
}
