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

/**
 * Calls share a call of `fn` that started no earlier than they did: a caller that finds a
 * call in flight waits for the next one, which starts when that one settles and is shared
 * by every caller that came in meanwhile (a group commit). At most one call is in flight
 * and one waiting. Each caller gets what a call of its own would have told it (a listing
 * taken after it asked), while a burst of callers makes far fewer calls: 8 uploads that
 * check the JCDS listing at about the same time share one or two listings, not 8.
 */
export function coalesceFresh<T>(fn: () => Promise<T>): () => Promise<T> {
  const now = coalesce(fn);
  let next: Promise<T> | undefined;
  return () => {
    const inflight = now.pending;
    if (inflight === undefined) return now();
    // Started before this caller: its answer may predate what the caller must see.
    next ??= inflight
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        next = undefined;
        return now();
      });
    return next;
  };
}

/** Awaits a shared promise, but lets this caller stop waiting when its signal aborts. */
export function waitFor<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      v => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
