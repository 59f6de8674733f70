/**
 * "One in flight": concurrent callers share one call instead of each starting their own
 * (a token refresh, a presigned-URL refresh, a probe).
 */

/** A coalesced function: call it like `fn`; `pending` is the call in flight, if any. */
export interface Coalesced<T> {
  (): Promise<T>;
  /** The shared promise of the call in flight; undefined once it has settled. */
  readonly pending: Promise<T> | undefined;
}

/**
 * Calls share one in-flight promise; once it settles, the next call starts anew (smithy's
 * memoize without the cache). Nothing is kept: a result to keep is the caller's to store
 * (before the promise settles, inside `fn`, if callers must see it as soon as they resume).
 * A synchronous throw from `fn` becomes a rejection.
 *
 * "Probe once, share the in-flight probe, forget a failure, keep a success forever":
 * `const probe = coalesce(doProbe); … result ??= await probe();`
 */
export function coalesce<T>(fn: () => Promise<T>): Coalesced<T> {
  let inflight: Promise<T> | undefined;
  const call = (): Promise<T> => {
    if (inflight !== undefined) return inflight;
    let p: Promise<T>;
    try {
      p = Promise.resolve(fn());
    } catch (err) {
      p = Promise.reject(err as Error);
    }
    inflight = p;
    // Registered before any caller's handlers, so `pending` is cleared by the time they
    // resume: a caller that calls again after its await starts a new call.
    const forget = (): void => {
      if (inflight === p) inflight = undefined;
    };
    p.then(forget, forget);
    return p;
  };
  return Object.defineProperty(call, 'pending', {
    get: (): Promise<T> | undefined => inflight,
  }) as Coalesced<T>;
}
