/** The environment check: the variables parse like every command's, leniently. */
import { loadConfig, type Config } from '../../shared/config.ts';
import { AppError, describeError, errorCode, redactText } from '../../shared/errors.ts';
import { failed, passed, type CheckResult } from './report.ts';

/** Variables whose problems are reported together (removing one means removing both). */
const PAIRS: Record<string, string> = {
  JAMF_CLIENT_ID: 'JAMF_CLIENT_SECRET',
  JAMF_CLIENT_SECRET: 'JAMF_CLIENT_ID',
  JAMF_USERNAME: 'JAMF_PASSWORD',
  JAMF_PASSWORD: 'JAMF_USERNAME',
  MONITOR_USER: 'MONITOR_PASSWORD',
  MONITOR_PASSWORD: 'MONITOR_USER',
};

function variablesIn(problem: string): string[] {
  const head = problem.split(': set it to')[0] ?? problem;
  return [...new Set(head.match(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g) ?? [])];
}

/** Removes user info (`//user:password@`) and secret-looking values from a problem line. */
function scrubProblem(problem: string): string {
  return redactText(problem.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s"]*@/gi, '$1***@'));
}

export interface EnvironmentCheck {
  result: CheckResult;
  /** The configuration, without the invalid variables (undefined if it could not be read). */
  config: Config | undefined;
  /** Variables left out because they were invalid. */
  invalid: Set<string>;
}

/**
 * Parses the environment like every command (loadConfig), but leniently: an invalid
 * variable is named in a failed line and left out, so the other checks still run.
 */
export function checkEnvironment(env: Record<string, string | undefined>): EnvironmentCheck {
  const work = { ...env };
  const invalid = new Set<string>();
  const problems: string[] = [];
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      const config = loadConfig(work, { requireJamf: false });
      if (problems.length > 0) {
        return {
          result: failed(
            'environment',
            `${problems.map(scrubProblem).join('; ')} (the checks below ran without ${[...invalid].join(', ')})`,
            'Set the variables named (README.md: "Configuration reference"), then run `jcds doctor` again.',
          ),
          config,
          invalid,
        };
      }
      const notes = [`JCDS_TRANSPORT=${config.transport}`];
      if (env['REDIS_URL'] === undefined || env['REDIS_URL'].trim() === '')
        notes.push(`REDIS_URL not set (the default ${config.redisUrl})`);
      if (config.s3Endpoint) notes.push('AWS_ENDPOINT_URL_S3 set (an S3 override)');
      return { result: passed('environment', `valid; ${notes.join(', ')}`), config, invalid };
    } catch (err) {
      if (errorCode(err) !== 'CONFIG_INVALID') throw err;
      const details = err instanceof AppError ? err.details : undefined;
      const list = Array.isArray(details?.['problems'])
        ? (details['problems'] as unknown[]).map(String)
        : [describeError(err)];
      let removed = false;
      for (const p of list) {
        if (!problems.includes(p)) problems.push(p);
        for (const v of variablesIn(p)) {
          for (const name of [v, PAIRS[v]]) {
            if (name === undefined) continue;
            invalid.add(name);
            if (work[name] !== undefined) {
              delete work[name];
              removed = true;
            }
          }
        }
      }
      if (!removed) break;
    }
  }
  return {
    result: failed(
      'environment',
      problems.map(scrubProblem).join('; '),
      'Set the variables named (README.md: "Configuration reference"), then run `jcds doctor` again.',
    ),
    config: undefined,
    invalid,
  };
}
