/**
 * docker-compose.yml, Dockerfile and .dockerignore, checked without a Docker engine: the
 * services and how they are built, Redis persistence and eviction policy, that the
 * worker and monitor are configured by the environment names of design.md (and nothing
 * misspelt), that the worker scales, that the monitor is never open without auth.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_DOC } from '../../shared/config.ts';

const ROOT = join(import.meta.dirname, '../..');
const read = (f: string): string => readFileSync(join(ROOT, f), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; target?: string; dockerfile?: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  container_name?: string;
  profiles?: string[];
  healthcheck?: { test: string[] };
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const dockerfile = read('Dockerfile');
const targets = [...dockerfile.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map(m => m[1]);

/** The variables design.md section 8 names (the contract). */
const DESIGN_ENV = [
  'JAMF_URL',
  'JAMF_CLIENT_ID',
  'JAMF_CLIENT_SECRET',
  'JAMF_USERNAME',
  'JAMF_PASSWORD',
  'REDIS_URL',
  'JCDS_FLEET_SECRET',
  'JCDS_TRANSPORT',
  'JCDS_PART_SIZE',
  'JCDS_SPLIT_THRESHOLD',
  'AWS_ENDPOINT_URL_S3',
  'LOG_LEVEL',
];
const KNOWN_ENV = new Set([...Object.keys(ENV_DOC), 'JCDS_SHUTDOWN_GRACE_MS']);

describe('docker-compose.yml', () => {
  it('has redis, the simulator, the worker, the monitor (and the cli on demand)', () => {
    expect(Object.keys(services).sort()).toEqual([
      'cli',
      'monitor',
      'redis',
      'simulator',
      'worker',
    ]);
    expect(services['cli']!.profiles).toEqual(['cli']);
  });

  it('redis persists with AOF into a named volume and never evicts', () => {
    const redis = services['redis']!;
    expect(redis.image).toMatch(/^redis:7/);
    const cmd = redis.command!.join(' ');
    expect(cmd).toContain('--appendonly yes');
    expect(cmd).toContain('--appendfsync everysec');
    expect(cmd).toContain('--maxmemory-policy noeviction');
    expect(redis.volumes).toContain('redis-data:/data');
    expect(compose.volumes).toHaveProperty('redis-data');
    expect(redis.healthcheck?.test).toContain('redis-cli');
  });

  it('builds every service but redis from the Dockerfile, with targets that exist', () => {
    expect(targets).toEqual(expect.arrayContaining(['runtime', 'simulator']));
    for (const [name, s] of Object.entries(services)) {
      if (name === 'redis') continue;
      expect(s.build?.context, name).toBe('.');
      expect(targets, name).toContain(s.build?.target);
    }
    expect(services['simulator']!.build?.target).toBe('simulator');
    for (const name of ['worker', 'monitor', 'cli'])
      expect(services[name]!.build?.target).toBe('runtime');
  });

  it('runs the product entry points that exist in the repository', () => {
    const files = [
      ...services['worker']!.command!,
      ...services['monitor']!.command!,
      ...services['simulator']!.command!,
      ...services['cli']!.entrypoint!,
    ].filter(a => a.endsWith('.ts') || a.endsWith('.js'));
    expect(files).toEqual([
      'dist/worker/main.js',
      'dist/worker/monitor/main.js',
      'test/sim/main.ts',
      'bin/jcds.js',
    ]);
    // dist/ is the image's build of the sources (its build stage runs scripts/build.js).
    const source = (f: string): string => f.replace(/^dist\/(.*)\.js$/, '$1.ts');
    for (const f of files) expect(existsSync(join(ROOT, source(f))), f).toBe(true);
    expect(dockerfile).toMatch(/^RUN node scripts\/build\.js$/m);
    expect(dockerfile.slice(dockerfile.search(/AS runtime/))).toContain(
      'COPY --from=build /app/dist ./dist',
    );
    expect(dockerfile).toMatch(/^CMD .*"dist\/worker\/main\.js"\]$/m);
  });

  it('configures the worker with the design.md environment names, and only known ones', () => {
    const env = services['worker']!.environment!;
    for (const name of DESIGN_ENV) expect(env, name).toHaveProperty(name);
    for (const [name, s] of Object.entries(services)) {
      for (const key of Object.keys(s.environment ?? {})) {
        expect(KNOWN_ENV.has(key), `${name}: ${key} is not a variable the product reads`).toBe(
          true,
        );
      }
    }
    // The same file works against a real Jamf: everything Jamf-specific is overridable.
    for (const name of [
      'JAMF_URL',
      'JAMF_CLIENT_ID',
      'JAMF_CLIENT_SECRET',
      'AWS_ENDPOINT_URL_S3',
    ]) {
      expect(env[name], name).toMatch(new RegExp(`^\\$\\{${name}[-:]`));
    }
    // No secret is hard-coded: the fleet secret must come from the operator.
    expect(env['JCDS_FLEET_SECRET']).toMatch(/^\$\{JCDS_FLEET_SECRET:\?/);
    // The command line on demand talks to the same Redis as the workers.
    expect(services['cli']!.environment?.['REDIS_URL']).toBe(env['REDIS_URL']);
  });

  it('lets the worker scale (no fixed name or host port) and shares the packages folder', () => {
    const worker = services['worker']!;
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    expect(worker.volumes?.some(v => v.endsWith(':/packages'))).toBe(true);
    expect(worker.depends_on?.['redis']?.condition).toBe('service_healthy');
    // Workers must not need the simulator: a real Jamf setup leaves it out.
    expect(worker.depends_on).not.toHaveProperty('simulator');
  });

  it('never runs the monitor without auth and publishes it on loopback only', () => {
    const monitor = services['monitor']!;
    expect(monitor.command).toEqual(expect.arrayContaining(['--host', '0.0.0.0']));
    expect(monitor.environment?.['MONITOR_USER']).toBeDefined();
    expect(monitor.environment?.['MONITOR_PASSWORD']).toMatch(/^\$\{MONITOR_PASSWORD:\?/);
    expect(monitor.environment?.['REDIS_URL']).toBeDefined();
    expect(monitor.ports).toHaveLength(1);
    expect(monitor.ports![0]).toMatch(/^127\.0\.0\.1:/);
    expect(monitor.healthcheck?.test.join(' ')).toContain('/healthz');
  });

  it('starts the monitor read-only unless the operator sets MONITOR_ALLOW_WRITES', () => {
    const monitor = services['monitor']!;
    expect(monitor.command).not.toContain('--allow-writes');
    expect(monitor.environment?.['MONITOR_ALLOW_WRITES']).toBe('${MONITOR_ALLOW_WRITES:-0}');
  });

  it('makes the simulator reachable from the other containers', () => {
    const cmd = services['simulator']!.command!.join(' ');
    expect(cmd).toContain('--host 0.0.0.0');
    expect(cmd).toContain('--public-host simulator');
    expect(services['worker']!.environment!['JAMF_URL']).toContain('http://simulator:9000');
    expect(services['worker']!.environment!['AWS_ENDPOINT_URL_S3']).toContain(
      'http://simulator:9001',
    );
    expect(compose.volumes).toHaveProperty('sim-data');
  });
});

describe('Dockerfile and .dockerignore', () => {
  it('copies sources that exist and never the test suite into the runtime image', () => {
    const copies = [...dockerfile.matchAll(/^COPY\s+(?!--from)(\S+)\s/gm)].map(m => m[1]!);
    expect(copies.length).toBeGreaterThan(0);
    for (const src of copies) expect(existsSync(join(ROOT, src)), src).toBe(true);
    const runtime = dockerfile.slice(dockerfile.search(/AS runtime/));
    expect(runtime).not.toMatch(/COPY\s+test/);
    expect(runtime).toContain('--from=prod-deps');
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
  });

  it('keeps what the images copy and leaves out node_modules, .data and .git', () => {
    const ignore = read('.dockerignore')
      .split('\n')
      .map(l => l.trim())
      .filter(l => l && !l.startsWith('#'));
    for (const p of ['node_modules', '.data', '.git', 'artifacts']) expect(ignore).toContain(p);
    for (const kept of [
      'shared',
      'worker',
      'producer',
      'bin',
      'package.json',
      'package-lock.json',
    ]) {
      expect(
        ignore.some(p => p === kept || p === `${kept}/`),
        kept,
      ).toBe(false);
    }
    expect(ignore).toContain('!test/sim');
  });
});
