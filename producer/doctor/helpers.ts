/**
 * The time bound of every network step, and the text helpers the checks share: durations,
 * the description of a failure and its fix, URLs without user info or query.
 */
import { AppError, describeError, errorCode, errorSpec } from '../../shared/errors.ts';

// --- Time bounds ---------------------------------------------------------------------------

export class CheckTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${formatMs(ms)}`);
    this.name = 'CheckTimeoutError';
  }
}

/**
 * Runs `fn` with a signal that aborts after `ms` (or when `outer` aborts); rejects with a
 * CheckTimeoutError at the deadline even if `fn` ignores its signal. `onLate` receives the
 * value of a call that ended after the deadline (to close what it opened).
 */
export async function withTimeout<T>(
  what: string,
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
  outer?: AbortSignal,
  onLate?: (value: T) => void,
): Promise<T> {
  const controller = new AbortController();
  const onOuter = (): void => controller.abort(outer?.reason);
  if (outer?.aborted) onOuter();
  else outer?.addEventListener('abort', onOuter, { once: true });
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      const err = new CheckTimeoutError(what, ms);
      reject(err);
      controller.abort(err);
    }, ms);
  });
  const work = fn(controller.signal);
  work.then(
    v => {
      if (timedOut) onLate?.(v);
    },
    () => undefined,
  );
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
  }
}

export function formatMs(ms: number): string {
  return ms < 1_000 ? `${Math.round(ms)} ms` : `${Number((ms / 1_000).toFixed(1))} s`;
}

export function formatLifetime(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1_000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Number((ms / 3_600_000).toFixed(1))} h`;
}

/** A network error's code (`ECONNREFUSED`, `ENOTFOUND`, …) from an error or its causes. */
function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && typeof e === 'object' && e !== null; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A short, redacted description of a failure (the network code first when there is one). */
export function failureText(err: unknown): string {
  if (err instanceof CheckTimeoutError || err instanceof AppError) return describeError(err);
  const code = networkCode(err);
  const text = describeError(err);
  return code && !text.includes(code) ? `${code} (${text})` : text;
}

/** The registry's advice for an error's code, or `fallback`. */
export function hintFor(err: unknown, fallback: string): string {
  return errorSpec(errorCode(err))?.hint ?? fallback;
}

/** A URL for messages: scheme, host, port and path; never user info or a query. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return '(invalid URL)';
  }
}
