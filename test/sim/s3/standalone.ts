/**
 * The S3 endpoint alone, in its own process (tests that measure its memory, or kill it):
 *   node test/sim/s3/standalone.ts --data-dir DIR [--port P] [--region R] [--credential-ttl S]
 * Prints one JSON line on stdout once listening: { port, endpoint, pid, accessKeyId,
 * secretAccessKey, sessionToken, expiresAt } (a credential issued for the caller).
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../../shared/logger.ts';
import { emptyCounters } from '../counters.ts';
import { FileCredentialRegistry } from '../credentials.ts';
import { DiskObjectStore } from '../store.ts';
import type { Counters, Faults } from '../types.ts';
import { createS3Server } from './server.ts';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    port: { type: 'string', default: '0' },
    region: { type: 'string', default: 'us-east-1' },
    'credential-ttl': { type: 'string', default: '3600' },
  },
});
const dataDir = values['data-dir'];
if (!dataDir) {
  process.stderr.write('usage: standalone.ts --data-dir DIR [--port P]\n');
  process.exit(2);
}
// The test that spawns this process sets LOG_LEVEL (the simulator is not the product: it
// reads the environment itself).
const logger = createLogger({ name: 'sim-s3', level: process.env['LOG_LEVEL'] ?? 'info' });
const store = new DiskObjectStore(dataDir, { logger });
const credentials = new FileCredentialRegistry(dataDir);
const faults: Faults = {};
const counters: Counters = emptyCounters();
const server = createS3Server({
  store,
  credentials,
  faults,
  counters,
  region: values.region,
  logger,
});
server.listen(Number(values.port), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const credential = credentials.issue(Number(values['credential-ttl']));
  process.stdout.write(
    `${JSON.stringify({ port, endpoint: `http://127.0.0.1:${port}`, pid: process.pid, ...credential })}\n`,
  );
});

const stop = (): void => {
  server.close();
  server.closeAllConnections();
  void store.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
