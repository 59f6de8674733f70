/**
 * The monitor: Bull Board on express for every queue (upload, upload-part, download,
 * sync, so an upload's flow shows its part children), plus /healthz and /metrics.
 *
 *   GET /            → redirect to the dashboard at /queues
 *   GET /queues/...  → Bull Board (UI, static assets, API)     Basic auth when configured
 *   GET /metrics     → Prometheus text (prometheus.ts)         Basic auth when configured
 *   GET /healthz     → 200 {status:"ok"} / 503 when Redis does not answer (never auth;
 *                      names no host or port: it answers anyone who can reach the port);
 *                      maxmemoryPolicy and evictionSafe, status "warning" when not noeviction;
 *                      workers: how many worker processes report healthy and unhealthy
 *                      (their health records, worker/fitness.ts), status "warning" when one
 *                      stopped taking jobs (counts only here: /metrics' jcds_workers names
 *                      the error code)
 *
 * Every queue is shown through board.ts (JcdsQueueAdapter): jobs named after what they
 * move, progress in bytes and percent, failure reasons with their code and advice first and
 * no stack traces, everything redacted; and every JSON answer of Bull Board's API is
 * redacted once more as a whole (redactApi), so a field the adapter does not know of (a
 * new Bull Board version's) cannot carry a secret out either.
 *
 * Read-only unless allowWrites: every queue is in Bull Board's readOnlyMode (no action
 * buttons, its write API answers 405) and writeGuard refuses any write before Bull Board
 * sees it; with allowWrites, writeGuard still refuses writes from other sites (guard.ts).
 * Failed logins are throttled (throttle.ts).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { ExpressAdapter } from '@bull-board/express';
import express from 'express';
import { Redis } from 'ioredis';
import { AppError, describeError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { connectProducer, describeRedisUrl, redisOptions } from '../../shared/queues/connection.ts';
import { readEvictionPolicy, type EvictionPolicy } from '../../shared/queues/eviction.ts';
import { openQueue } from '../../shared/queues/factory.ts';
import { ALL_QUEUES, QUEUES } from '../../shared/queues/names.ts';
import { assertSafeBinding, basicAuth, type MonitorCredentials } from './auth.ts';
import { JcdsQueueAdapter } from './board.ts';
import { loopbackHostGuard, writeGuard } from './guard.ts';
import { readWorkerHealth } from '../fitness.ts';
import { createExporter } from './prometheus.ts';
import { redact } from './redact.ts';
import { LoginThrottle, type LoginThrottleOptions } from './throttle.ts';
import { withTimeout } from './timeout.ts';

export const DASHBOARD_PATH = '/queues';

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

export interface MonitorOptions {
  redisUrl: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  credentials?: MonitorCredentials | undefined;
  /** Retry, remove, clean, pause and add from the dashboard. @defaultValue false (read-only) */
  allowWrites?: boolean;
  /** Failed-login limits (throttle.ts's defaults otherwise). */
  loginThrottle?: LoginThrottleOptions;
  logger?: Logger | undefined;
}

export interface MonitorHandle {
  /** http://host:port */
  url: string;
  dashboardUrl: string;
  port: number;
  close(): Promise<void>;
}

const DESCRIPTIONS: Record<string, string> = {
  [QUEUES.upload]:
    'one job per package to publish (step job: prepare, stage, complete, finalize); Retry on a failed upload resumes it',
  [QUEUES.uploadPart]: 'multipart children of uploads: one job per S3 part, plus the hash job',
  [QUEUES.download]: 'one job per JCDS file to fetch, verified',
  [QUEUES.sync]: 'folder syncs, up or down (scheduled or on demand)',
};

/** Redacts every JSON answer of Bull Board's API (Bull Board sends its answers with res.json). */
function redactApi(_req: express.Request, res: express.Response, next: express.NextFunction): void {
  const json = res.json.bind(res);
  res.json = (body: unknown) => json(redact(body));
  next();
}

export async function startMonitor(options: MonitorOptions): Promise<MonitorHandle> {
  assertSafeBinding(options.host, options.credentials);
  // Fail fast (REDIS_UNAVAILABLE naming the URL) when Redis is not there at start.
  try {
    (await connectProducer(options.redisUrl)).disconnect();
  } catch (err) {
    const why = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
    throw new AppError(
      'REDIS_UNAVAILABLE',
      `Cannot reach Redis at ${describeRedisUrl(options.redisUrl)}${why}: the monitor reads the queues from it. Check that redis-server is running and REDIS_URL is right.`,
      { cause: err },
    );
  }

  const log = options.logger;
  const queueRedis = new Redis(redisOptions(options.redisUrl, 'worker'));
  queueRedis.on('error', err => log?.debug({ err }, 'redis connection error (reconnecting)'));
  // Health and metrics fail fast while Redis is away instead of queueing commands.
  const probeRedis = new Redis({
    ...redisOptions(options.redisUrl, 'worker'),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
  });
  probeRedis.on('error', err => log?.debug({ err }, 'redis probe connection error'));

  const queues = ALL_QUEUES.map(name => {
    const q = openQueue(name, queueRedis);
    q.on('error', err => log?.warn({ err, queue: name }, 'queue error'));
    return q;
  });
  const readOnly = !options.allowWrites;
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  const adapters = queues.map(
    q =>
      new JcdsQueueAdapter(q, {
        readOnly,
        description: DESCRIPTIONS[q.name] ?? '',
      }),
  );
  createBullBoard({
    queues: adapters,
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'jcds-fleet',
        hideDocsLink: true,
        ...(readOnly ? { environment: { label: 'read-only', color: '#6b7280' } } : {}),
        pollingInterval: { forceInterval: 3_000 },
      },
    },
  });
  const exporter = createExporter(probeRedis, queues);

  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    res
      .set('X-Frame-Options', 'DENY')
      .set('Referrer-Policy', 'no-referrer')
      .set('X-Content-Type-Options', 'nosniff')
      // Everything from this origin only: no third-party requests (the UI template links a
      // web font; it falls back to local fonts), no framing.
      .set('Content-Security-Policy', CSP);
    next();
  });
  app.get('/healthz', async (_req, res) => {
    try {
      await withTimeout(probeRedis.ping(), 2_000);
      // Whether this Redis may evict BullMQ's keys (workers refuse it: worker/redis-check.ts).
      const [eviction, health] = await Promise.all([
        withTimeout(readEvictionPolicy(probeRedis), 2_000).catch((): EvictionPolicy => ({
          policy: undefined,
          source: undefined,
          safe: false,
        })),
        withTimeout(readWorkerHealth(probeRedis), 2_000).catch(() => undefined),
      ]);
      const unhealthy = health?.filter(r => r.state === 'unhealthy').length ?? 0;
      const warnings = [
        ...(eviction.safe
          ? []
          : [
              'maxmemory-policy is not noeviction (or cannot be read): Redis may evict jobs and locks, and workers refuse to start. Set maxmemory-policy noeviction.',
            ]),
        ...(unhealthy > 0
          ? [
              `${unhealthy} worker process(es) stopped taking jobs (lost Jamf credentials or the fleet secret): /metrics (jcds_workers) names the error code and the worker's log what to fix; fix its configuration and restart it.`,
            ]
          : []),
      ];
      res.json({
        status: warnings.length === 0 ? 'ok' : 'warning',
        redis: 'up',
        maxmemoryPolicy: eviction.policy ?? 'unknown',
        evictionSafe: eviction.safe,
        workers: health ? { healthy: health.length - unhealthy, unhealthy } : 'unknown',
        ...(warnings.length > 0 ? { warning: warnings.join(' ') } : {}),
      });
    } catch (err) {
      // The log says where and why; the answer does not (no auth here: no host, no port).
      log?.warn(
        { redis: describeRedisUrl(options.redisUrl), err: describeError(err) },
        'healthz: Redis does not answer',
      );
      res.status(503).json({
        status: 'error',
        redis: 'down',
        error: "Redis does not answer: the monitor's log names it and says why",
      });
    }
  });
  if (options.credentials)
    app.use(basicAuth(options.credentials, new LoginThrottle(options.loginThrottle)));
  else app.use(loopbackHostGuard());
  app.use(writeGuard({ allowWrites: !readOnly, logger: log }));
  app.use(`${DASHBOARD_PATH}/api`, redactApi);
  app.get('/metrics', async (_req, res) => {
    try {
      const text = await exporter.metrics();
      res.set('Content-Type', exporter.contentType).send(text);
    } catch (err) {
      res
        .status(503)
        .type('text/plain')
        .send(`# metrics unavailable: ${describeError(err)}\n`);
    }
  });
  app.get('/', (_req, res) => res.redirect(302, `${DASHBOARD_PATH}/`));
  app.use(DASHBOARD_PATH, serverAdapter.getRouter() as express.Router);

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(options.port, options.host);
    s.once('listening', () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const hostPart = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${hostPart}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    dashboardUrl: `${url}${DASHBOARD_PATH}/`,
    port,
    close: () =>
      (closing ??= (async () => {
        server.closeAllConnections();
        await new Promise<void>(resolve => server.close(() => resolve()));
        await Promise.allSettled(queues.map(q => q.close()));
        queueRedis.disconnect();
        probeRedis.disconnect();
      })()),
  };
}
