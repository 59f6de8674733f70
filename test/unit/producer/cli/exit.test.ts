/**
 * The CLI's exit codes (design.md section 8: 0 done, 1 a job failed, 2 bad usage or input,
 * 3 configuration or connection) and the seams that keep process.exit out of the pure
 * parts: `run()` returns a code and never ends the process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppError, ConfigError, ERROR_CODES, type ErrorCode } from '../../../../shared/errors.ts';
import { EXIT, exitCodeFor, processExit } from '../../../../producer/cli/exit.ts';
import { run } from '../../../../producer/cli/program.ts';
import type { CliIo } from '../../../../producer/cli/io.ts';

/** A CliIo that captures stdout and stderr. */
function captureIo(env: Record<string, string> = {}, tty = false) {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: t => void (out += t),
    err: t => void (err += t),
    isTTY: tty,
    columns: 120,
    rows: 40,
    env: { PATH: process.env['PATH'], ...env },
    barStream: new PassThrough(),
  };
  return {
    io,
    out: () => out,
    err: () => err,
    json: () =>
      out
        .split('\n')
        .filter(l => l.trim() !== '')
        .map(l => JSON.parse(l) as Record<string, unknown>),
  };
}

afterEach(() => vi.restoreAllMocks());

describe('exitCodeFor', () => {
  it('maps every error code to 1, 2 or 3', () => {
    const expected: Partial<Record<ErrorCode, number>> = {
      CONFIG_INVALID: 3,
      REDIS_UNAVAILABLE: 3,
      JAMF_UNREACHABLE: 3,
      JAMF_AUTH_FAILED: 3,
      JAMF_FORBIDDEN: 3,
      JCDS_UNAVAILABLE: 3,
      VAULT_SECRET_MISSING: 3,
      USAGE: 2,
      FILE_NOT_FOUND: 2,
      FILE_NOT_REGULAR: 2,
      FILE_UNREADABLE: 2,
      FILE_EMPTY: 2,
      FILE_TOO_LARGE: 2,
      UNSUPPORTED_FILE_TYPE: 2,
      UNSAFE_FILE_NAME: 2,
      DESTINATION_EXISTS: 2,
      DESTINATION_INVALID: 2,
      JOB_NOT_FOUND: 2,
      PACKAGE_EXISTS: 1,
      VERIFY_FAILED: 1,
      PART_FAILED: 1,
      INTERNAL: 1,
    };
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const got = exitCodeFor(new AppError(code, 'x'));
      expect([1, 2, 3], code).toContain(got);
      if (expected[code] !== undefined) expect(got, code).toBe(expected[code]);
    }
  });

  it('treats commander errors as usage, plain errors as 1, and codes that crossed a process boundary by name', () => {
    expect(exitCodeFor(Object.assign(new Error('x'), { code: 'commander.unknownOption' }))).toBe(2);
    expect(exitCodeFor(new Error('boom'))).toBe(EXIT.jobFailed);
    expect(exitCodeFor({ code: 'REDIS_UNAVAILABLE', message: 'down' })).toBe(3);
    expect(exitCodeFor(new ConfigError('CONFIG_INVALID', 'bad'))).toBe(3);
  });
});

describe('run() never ends the process', () => {
  it('returns codes for help, unknown commands, bad options and bad files', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => {
      throw new Error('process.exit called');
    }) as never);
    const seam = vi.spyOn(processExit, 'exit');

    const help = captureIo();
    expect(await run(['--help'], help.io)).toBe(0);
    expect(help.err()).toContain('Usage: jcds');

    const unknown = captureIo();
    expect(await run(['bogus'], unknown.io)).toBe(2);
    expect(unknown.err()).toContain("unknown command 'bogus'");

    const missingArg = captureIo();
    expect(await run(['upload'], missingArg.io)).toBe(2);
    expect(missingArg.err()).toContain("missing required argument 'file'");

    const badPriority = captureIo();
    expect(await run(['upload', 'a.pkg', '--priority', '0'], badPriority.io)).toBe(2);
    expect(badPriority.err()).toContain('Use a whole number from 1 to 2097152');

    const badPort = captureIo();
    expect(await run(['monitor', '--port', '70000'], badPort.io)).toBe(2);

    expect(exit).not.toHaveBeenCalled();
    expect(seam).not.toHaveBeenCalled();
  });

  it('a bad file is exit 2 before any connection (Redis is never contacted)', async () => {
    const c = captureIo({ REDIS_URL: 'redis://127.0.0.1:1' });
    expect(await run(['upload', '/no/such/file.pkg', 'notes.txt', '--json'], c.io)).toBe(2);
    expect(c.err()).toContain('2 of 2 files cannot be uploaded; nothing was enqueued');
    expect(c.err()).toContain('/no/such/file.pkg does not exist');
    expect(c.err()).not.toContain('REDIS_UNAVAILABLE');
    // A missing file is FILE_NOT_FOUND for people and in JSON alike (issue 15: it was
    // [USAGE] on stderr); every file keeps its own code.
    expect(c.err()).toMatch(/^jcds: \[FILE_NOT_FOUND\] 2 of 2 files/);
    expect(c.err()).toContain('- [FILE_NOT_FOUND] /no/such/file.pkg does not exist');
    expect(c.err()).toContain('- [UNSUPPORTED_FILE_TYPE] "notes.txt" has the extension .txt');
    expect(c.json()).toEqual([
      expect.objectContaining({
        event: 'error',
        code: 'FILE_NOT_FOUND',
        exitCode: 2,
        details: {
          problems: [
            expect.objectContaining({ path: '/no/such/file.pkg', code: 'FILE_NOT_FOUND' }),
            expect.objectContaining({ code: 'UNSUPPORTED_FILE_TYPE' }),
          ],
        },
      }),
    ]);
  });

  it('a folder given to upload is told to use `jcds sync up`, not that it has no extension', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jcds-folder-'));
    try {
      const c = captureIo({ REDIS_URL: 'redis://127.0.0.1:1' });
      expect(await run(['upload', dir], c.io)).toBe(2);
      expect(c.err()).toContain(`[FILE_NOT_REGULAR] ${dir} is a folder`);
      expect(c.err()).toContain(`jcds sync up "${dir}"`);
      expect(c.err()).not.toContain('no extension');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a refused connection and a name that does not resolve read differently', async () => {
    const refused = captureIo({ REDIS_URL: 'redis://127.0.0.1:1' });
    expect(await run(['status'], refused.io)).toBe(3);
    expect(refused.err()).toContain(
      'connection refused (ECONNREFUSED): nothing listens on 127.0.0.1:1',
    );
    expect(refused.err()).not.toContain('Connection is closed');
    const dns = captureIo({ REDIS_URL: 'redis://no-such-host.invalid:6379' });
    expect(await run(['status'], dns.io)).toBe(3);
    expect(dns.err()).toContain('the host name does not resolve');
    expect(dns.err()).not.toContain('Connection is closed');
  });

  it('an invalid environment is exit 3 and names every variable to fix', async () => {
    const c = captureIo({ REDIS_URL: 'http://nope', JCDS_PART_SIZE: '1', MONITOR_USER: 'ops' });
    expect(await run(['status'], c.io)).toBe(3);
    const err = c.err();
    expect(err).toContain('[CONFIG_INVALID]');
    expect(err).toContain('REDIS_URL is "http://nope"');
    expect(err).toContain('JCDS_PART_SIZE is "1"');
    expect(err).toContain('MONITOR_USER and MONITOR_PASSWORD must be set together');
    expect(err).toContain('README.md');
  });

  it('`ls` needs the Jamf variables; producer commands do not', async () => {
    const c = captureIo({ REDIS_URL: 'redis://127.0.0.1:1' });
    expect(await run(['ls'], c.io)).toBe(3);
    expect(c.err()).toContain('JAMF_URL is not set');
    const s = captureIo({ REDIS_URL: 'redis://127.0.0.1:1' });
    expect(await run(['status'], s.io)).toBe(3);
    expect(s.err()).toContain('[REDIS_UNAVAILABLE]');
    expect(s.err()).not.toContain('JAMF');
  });
});
