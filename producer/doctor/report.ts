/**
 * What every check returns and how it is shown: the CheckResult and its builders, the
 * checklist line, the --json objects and the summary, and the scrub of secret values.
 */
export type CheckLevel = 'ok' | 'warn' | 'fail';

export const CHECKS = {
  environment: 'Environment',
  redis: 'Redis',
  'redis-eviction': 'Redis eviction policy',
  jamf: 'Jamf Pro',
  'jamf-auth': 'Jamf Pro authentication',
  'jamf-version': 'Jamf Pro version',
  privileges: 'Privileges',
  distribution: 'Cloud distribution point and transport',
  'jcds-credentials': 'JCDS credentials',
  clock: 'Clock',
  'fleet-secret': 'Fleet secret',
} as const;

export type CheckName = keyof typeof CHECKS;

export interface CheckResult {
  name: CheckName;
  title: string;
  level: CheckLevel;
  /** Not run: a check it needs failed (the reason is the detail). Level `warn`. */
  skipped?: boolean;
  /** What was found; never a secret. */
  detail: string;
  /** What to do (failures and warnings). */
  fix?: string | undefined;
  /** Structured facts for --json (e.g. the privileges granted and missing). */
  data?: Record<string, unknown>;
}

export const DEFAULT_TIMEOUT_MS = 5_000;

// --- Results -------------------------------------------------------------------------------

function result(
  name: CheckName,
  level: CheckLevel,
  detail: string,
  fix?: string,
  data?: Record<string, unknown>,
): CheckResult {
  return {
    name,
    title: CHECKS[name],
    level,
    detail,
    ...(fix === undefined ? {} : { fix }),
    ...(data === undefined ? {} : { data }),
  };
}

export const passed = (name: CheckName, detail: string, data?: Record<string, unknown>) =>
  result(name, 'ok', detail, undefined, data);
export const warned = (name: CheckName, detail: string, fix?: string) =>
  result(name, 'warn', detail, fix);
export const failed = (
  name: CheckName,
  detail: string,
  fix: string,
  data?: Record<string, unknown>,
) => result(name, 'fail', detail, fix, data);
export const skipped = (name: CheckName, reason: string): CheckResult => ({
  ...result(name, 'warn', `skipped: ${reason}`),
  skipped: true,
});

/** True when the check passed (a warning passes; a skipped check did not run). */
export function checkOk(r: CheckResult): boolean {
  return !r.skipped && r.level !== 'fail';
}

// --- Output --------------------------------------------------------------------------------

/** One checklist line (and its fix, indented, for a failure or warning). */
export function formatCheck(r: CheckResult): string {
  const mark = r.skipped ? '-' : r.level === 'ok' ? '✓' : r.level === 'warn' ? '!' : '✗';
  let text = `${mark} ${r.title}: ${r.detail}\n`;
  if (r.fix && r.level !== 'ok') text += `    fix: ${r.fix}\n`;
  return text;
}

/** The --json object of one check. */
export function checkJson(r: CheckResult): Record<string, unknown> {
  return {
    event: 'check',
    name: r.name,
    title: r.title,
    ok: checkOk(r),
    level: r.level,
    ...(r.skipped ? { skipped: true } : {}),
    detail: r.detail,
    fix: r.fix ?? null,
    ...(r.data ? r.data : {}),
  };
}

export interface DoctorSummary {
  ok: boolean;
  checks: number;
  passed: number;
  warnings: number;
  failed: number;
  skipped: number;
  /** 0 when nothing failed (warnings allowed), 3 otherwise (configuration/connection). */
  exitCode: 0 | 3;
}

export function summarize(results: readonly CheckResult[]): DoctorSummary {
  const count = (f: (r: CheckResult) => boolean): number => results.filter(f).length;
  const failedN = count(r => r.level === 'fail');
  return {
    ok: failedN === 0,
    checks: results.length,
    passed: count(r => !r.skipped && r.level === 'ok'),
    warnings: count(r => !r.skipped && r.level === 'warn'),
    failed: failedN,
    skipped: count(r => r.skipped === true),
    exitCode: failedN === 0 ? 0 : 3,
  };
}

export function summaryJson(s: DoctorSummary): Record<string, unknown> {
  return { event: 'summary', ...s };
}

export function formatSummary(s: DoctorSummary): string {
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const counts = [
    `${s.passed} passed`,
    plural(s.warnings, 'warning'),
    `${s.failed} failed`,
    `${s.skipped} skipped`,
  ].join(', ');
  const verdict = !s.ok
    ? 'fix the ✗ lines above, then run `jcds doctor` again (exit 3).'
    : s.warnings > 0
      ? 'ready; see the ! lines above.'
      : 'ready: workers can publish with this setup.';
  return `\n${counts}: ${verdict}\n`;
}

// --- Secrets -------------------------------------------------------------------------------

/** Replaces every occurrence of the given secrets in the text fields of a result. */
export function scrubSecrets(r: CheckResult, secrets: readonly string[]): CheckResult {
  // Short values would mangle ordinary words; the checks never put a secret in a line anyway.
  const list = secrets.filter(s => s.length >= 8).sort((a, b) => b.length - a.length);
  if (list.length === 0) return r;
  const scrub = (text: string): string => {
    let out = text;
    for (const s of list) out = out.split(s).join('[REDACTED]');
    return out;
  };
  const data = r.data
    ? (JSON.parse(scrub(JSON.stringify(r.data))) as Record<string, unknown>)
    : undefined;
  return {
    ...r,
    detail: scrub(r.detail),
    ...(r.fix === undefined ? {} : { fix: scrub(r.fix) }),
    ...(data === undefined ? {} : { data }),
  };
}

/** The password of a Redis URL (as written and decoded), for the scrub. */
export function redisPassword(url: string): string[] {
  try {
    const u = new URL(url);
    return [decodeURIComponent(u.password), u.password].filter(Boolean);
  } catch {
    return [];
  }
}
