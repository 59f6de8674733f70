/** The clock check: this machine's skew against a server's Date header (S3, else Jamf Pro). */
import { displayUrl, failureText, formatMs, withTimeout } from './helpers.ts';
import { failed, passed, warned, type CheckResult } from './report.ts';

/** SigV4 refuses a request whose time is more than 15 minutes off. */
export const MAX_SKEW_MS = 15 * 60_000;
export const WARN_SKEW_MS = 60_000;

export interface ClockTarget {
  url: string;
  /** How the line names it: "S3 (s3.us-east-1.amazonaws.com)". */
  label: string;
}

const CLOCK_FIX =
  "Sync this machine's clock with NTP (macOS: System Settings > General > Date & Time, or `sudo sntp -sS time.apple.com`; Linux: `timedatectl set-ntp true` or chrony).";

/**
 * The skew between this machine's clock and a server's `Date` header (an unsigned HEAD:
 * any status will do). The Date header has a 1 s resolution, so the estimate is ±1 s.
 */
export async function checkClock(
  target: ClockTarget,
  timeoutMs: number,
  signal?: AbortSignal,
  fetchImpl: typeof fetch = fetch,
  now: () => number = Date.now,
): Promise<CheckResult> {
  let date: string | null;
  let sentAt: number;
  let receivedAt: number;
  try {
    sentAt = now();
    date = await withTimeout(
      `HEAD ${displayUrl(target.url)}`,
      timeoutMs,
      async s => {
        const r = await fetchImpl(target.url, { method: 'HEAD', redirect: 'manual', signal: s });
        await r.arrayBuffer().catch(() => undefined);
        return r.headers.get('date');
      },
      signal,
    );
    receivedAt = now();
  } catch (err) {
    return warned(
      'clock',
      `cannot read the time of ${target.label}: ${failureText(err)}`,
      'Check that this machine reaches it; meanwhile make sure the clock is synced with NTP.',
    );
  }
  const serverTime = date === null ? NaN : Date.parse(date);
  if (!Number.isFinite(serverTime)) {
    return warned(
      'clock',
      `${target.label} answered without a usable Date header`,
      'Make sure the clock is synced with NTP.',
    );
  }
  // The Date header is truncated to the second: its middle is the best estimate.
  const skew = (sentAt + receivedAt) / 2 - (serverTime + 500);
  const size = Math.abs(skew);
  const text =
    size < 1_000
      ? `this machine's clock agrees with ${target.label} (within 1 s)`
      : `this machine's clock is ${formatMs(size)} ${skew > 0 ? 'ahead of' : 'behind'} ${target.label} (±1 s)`;
  const data = { clock: { skewMs: Math.round(skew), target: displayUrl(target.url) } };
  if (size > MAX_SKEW_MS) {
    return failed(
      'clock',
      `${text}: S3 refuses signatures more than 15 min off (RequestTimeTooSkewed)`,
      CLOCK_FIX,
      data,
    );
  }
  if (size > WARN_SKEW_MS) {
    return { ...warned('clock', `${text}: more than 1 min off`, CLOCK_FIX), data };
  }
  return passed('clock', text, data);
}
