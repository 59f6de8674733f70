/**
 * `node worker/monitor/main.ts [--port N] [--host H] [--allow-writes | --read-only]` (and
 * `jcds monitor`): serves the dashboard until SIGTERM/SIGINT. Exit codes as the CLI's: 2
 * bad usage, 3 configuration or connection (including a non-loopback host without
 * MONITOR_* auth).
 *
 * Read-only unless `--allow-writes` or MONITOR_ALLOW_WRITES=1: a dashboard that can
 * change jobs is worth attacking, so changing them is something the operator asks for.
 * `--read-only` (the default) wins over MONITOR_ALLOW_WRITES; both flags at once is a
 * usage error.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../shared/config.ts';
import { describeError, errorCode } from '../../shared/errors.ts';
import { createLogger } from '../../shared/logger.ts';
import { startMonitor, type MonitorHandle } from './server.ts';

const USAGE = 'Usage: jcds monitor [--port N] [--host H] [--allow-writes | --read-only]';

function fail(message: string, code: number): never {
  process.stderr.write(`jcds monitor: ${message}\n`);
  process.exit(code);
}

export async function runMonitor(argv: string[] = process.argv.slice(2)): Promise<MonitorHandle> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '3000' },
        host: { type: 'string', default: '127.0.0.1' },
        'read-only': { type: 'boolean', default: false },
        'allow-writes': { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    fail(`${describeError(err)}. ${USAGE}`, 2);
  }
  if (values['read-only'] && values['allow-writes'])
    fail(`--read-only and --allow-writes contradict each other: give one. ${USAGE}`, 2);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    fail(
      `--port ${JSON.stringify(values.port)} is not a port: use a whole number from 0 to 65535.`,
      2,
    );
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    fail(describeError(err), 3);
  }
  const logger = createLogger({ level: config.logLevel, name: 'jcds-monitor' });
  const allowWrites = values['allow-writes'] || (config.monitorAllowWrites && !values['read-only']);
  let handle: MonitorHandle;
  try {
    handle = await startMonitor({
      redisUrl: config.redisUrl,
      host: values.host,
      port,
      allowWrites,
      credentials:
        config.monitorUser && config.monitorPassword
          ? { user: config.monitorUser, password: config.monitorPassword }
          : undefined,
      logger,
    });
  } catch (err) {
    const code = errorCode(err);
    const addr = (err as NodeJS.ErrnoException).code;
    if (addr === 'EADDRINUSE')
      fail(`port ${port} on ${values.host} is in use: pick another with --port.`, 2);
    if (addr === 'EADDRNOTAVAIL')
      fail(`${values.host} is not an address of this machine: check --host.`, 2);
    fail(`[${code ?? 'INTERNAL'}] ${describeError(err)}`, code === undefined ? 1 : 3);
  }
  logger.info(
    {
      dashboard: handle.dashboardUrl,
      metrics: `${handle.url}/metrics`,
      auth: Boolean(config.monitorUser),
      readOnly: !allowWrites,
    },
    'monitor listening',
  );
  process.stderr.write(
    `Dashboard: ${handle.dashboardUrl}${allowWrites ? '' : ' (read-only: --allow-writes to retry, clean or add from it)'}\nMetrics:   ${handle.url}/metrics\nHealth:    ${handle.url}/healthz\n`,
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    handle.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (process.channel) {
    // Started by `jcds monitor` with an IPC channel: the kernel closes it when the CLI dies,
    // however it dies (SIGKILL too), and the monitor stops with it instead of running on.
    process.channel.unref();
    if (!process.connected) stop();
    else process.once('disconnect', stop);
  }
  return handle;
}

if (import.meta.main) await runMonitor();
