/**
 * `node worker/monitor/main.ts [--port N] [--host H] [--read-only]` (and `jcds monitor`):
 * serves the dashboard until SIGTERM/SIGINT. Exit codes as the CLI's: 2 bad usage, 3
 * configuration or connection (including a non-loopback host without MONITOR_* auth).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../shared/config.ts';
import { describeError, errorCode } from '../../shared/errors.ts';
import { createLogger } from '../../shared/logger.ts';
import { startMonitor, type MonitorHandle } from './server.ts';

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
      },
    }));
  } catch (err) {
    fail(`${describeError(err)}. Usage: jcds monitor [--port N] [--host H] [--read-only]`, 2);
  }
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
  let handle: MonitorHandle;
  try {
    handle = await startMonitor({
      redisUrl: config.redisUrl,
      host: values.host,
      port,
      readOnly: values['read-only'],
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
      readOnly: values['read-only'],
    },
    'monitor listening',
  );
  process.stderr.write(
    `Dashboard: ${handle.dashboardUrl}\nMetrics:   ${handle.url}/metrics\nHealth:    ${handle.url}/healthz\n`,
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
  return handle;
}

if (import.meta.main) await runMonitor();
