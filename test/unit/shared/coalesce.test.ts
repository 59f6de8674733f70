/**
 * coalesce (shared/coalesce.ts): concurrent calls share one in-flight promise, and nothing
 * is kept once it settles; and its two users, the presigned-URL refresh of a download and
 * the Jamf token refresh.
 */
import { describe, expect, it } from 'vitest';
import { coalesce, coalesceFresh, waitFor } from '../../../shared/coalesce.ts';
import { PresignedUrl } from '../../../shared/download/range-fetcher.ts';
import { JamfTokenProvider } from '../../../shared/jamf/auth.ts';
import type { JamfHttp } from '../../../shared/jamf/http.ts';

function deferred<T>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('coalesce', () => {
  it('gives concurrent callers one shared call', async () => {
    const gate = deferred<string>();
    let calls = 0;
    const f = coalesce(() => {
      calls++;
      return gate.promise;
    });
    const a = f();
    const b = f();
    expect(b).toBe(a);
    expect(f.pending).toBe(a);
    expect(calls).toBe(1);
    gate.resolve('v');
    expect(await Promise.all([a, b, f()])).toEqual(['v', 'v', 'v']);
    expect(calls).toBe(1);
    expect(f.pending).toBeUndefined();
  });

  it('starts anew after a resolution (nothing is cached)', async () => {
    let calls = 0;
    const f = coalesce(async () => ++calls);
    expect(await f()).toBe(1);
    expect(await f()).toBe(2);
    expect(await Promise.all([f(), f()])).toEqual([3, 3]);
  });

  it('starts anew after a rejection, and every waiter sees the rejection', async () => {
    let calls = 0;
    const f = coalesce(async () => {
      calls++;
      if (calls === 1) throw new Error('first fails');
      return 'ok';
    });
    const results = await Promise.allSettled([f(), f()]);
    expect(results.map(r => r.status)).toEqual(['rejected', 'rejected']);
    expect(f.pending).toBeUndefined();
    expect(await f()).toBe('ok');
    expect(calls).toBe(2);
  });

  it('turns a synchronous throw into a rejection', async () => {
    let calls = 0;
    const f = coalesce((): Promise<number> => {
      calls++;
      if (calls === 1) throw new Error('sync');
      return Promise.resolve(calls);
    });
    let p: Promise<number> | undefined;
    expect(() => {
      p = f();
    }).not.toThrow();
    await expect(p).rejects.toThrow('sync');
    expect(await f()).toBe(2);
  });

  it('serves "probe once, forget a failure, keep a success forever"', async () => {
    let calls = 0;
    const probe = coalesce(async () => {
      calls++;
      if (calls === 1) throw new Error('not yet');
      return calls;
    });
    let cached: number | undefined;
    const get = async (): Promise<number> => (cached ??= await probe());
    await expect(get()).rejects.toThrow('not yet');
    expect(await Promise.all([get(), get()])).toEqual([2, 2]);
    expect(await get()).toBe(2);
    expect(calls).toBe(2);
  });
});

describe('PresignedUrl', () => {
  it('loads once for concurrent callers and refreshes once per stale URL', async () => {
    let n = 0;
    const gate = deferred<void>();
    const url = new PresignedUrl(async () => {
      n++;
      if (n > 1) await gate.promise;
      return `u${n}`;
    });
    expect(await Promise.all([url.get(), url.get()])).toEqual(['u1', 'u1']);
    const first = url.refresh('u1');
    // Refreshes in flight are shared and not counted again, whatever URL the caller had.
    const second = url.refresh('u1');
    const third = url.refresh('u0');
    expect(second).toBe(first);
    expect(third).toBe(first);
    gate.resolve();
    expect(await Promise.all([first, second, third])).toEqual(['u2', 'u2', 'u2']);
    expect(url.refreshes).toBe(1);
    // A caller with an older URL gets the current one without a load.
    expect(await url.refresh('u1')).toBe('u2');
    expect(await url.get()).toBe('u2');
    expect(n).toBe(2);
  });

  it('forgets a failed load', async () => {
    let n = 0;
    const url = new PresignedUrl(async () => {
      n++;
      if (n === 1) throw new Error('jamf down');
      return 'u';
    });
    await expect(url.get()).rejects.toThrow('jamf down');
    expect(await url.get()).toBe('u');
  });
});

describe('JamfTokenProvider', () => {
  /** A JamfHttp whose token endpoint answers a fresh 60 s OAuth token per call. */
  function fakeHttp(gate?: Promise<void>): { http: JamfHttp; calls: string[] } {
    const calls: string[] = [];
    const http = {
      host: 'jamf.example',
      async request(req: { path: string }) {
        calls.push(req.path);
        await gate;
        return {
          status: 200,
          headers: {},
          body: { access_token: `t${calls.length}`, expires_in: 60 },
        };
      },
    } as unknown as JamfHttp;
    return { http, calls };
  }

  it('makes one token request for concurrent callers, and none while the token is fresh', async () => {
    const gate = deferred<void>();
    const { http, calls } = fakeHttp(gate.promise);
    let now = 0;
    const p = new JamfTokenProvider({
      http,
      auth: { kind: 'oauth', id: 'c', secret: 's' },
      now: () => now,
    });
    const waiting = Promise.all([p.getToken(), p.getToken(), p.getToken()]);
    gate.resolve();
    expect(await waiting).toEqual(['t1', 't1', 't1']);
    expect(calls).toEqual(['/api/v1/oauth/token']);
    now = 53_000;
    expect(await p.getToken()).toBe('t1');
    // Inside the margin (10% of 60 s): one refresh.
    now = 54_000;
    expect(await Promise.all([p.getToken(), p.getToken()])).toEqual(['t2', 't2']);
    expect(p.tokenRequests).toBe(2);
  });

  it('after a 401, N refused callers make one request; a caller with an old token gets the new one', async () => {
    const { http } = fakeHttp();
    const p = new JamfTokenProvider({ http, auth: { kind: 'oauth', id: 'c', secret: 's' } });
    expect(await p.getToken()).toBe('t1');
    expect(await Promise.all([p.refreshAfter401('t1'), p.refreshAfter401('t1')])).toEqual([
      't2',
      't2',
    ]);
    expect(await p.refreshAfter401('t1')).toBe('t2');
    expect(p.tokenRequests).toBe(2);
  });
});

describe('coalesceFresh', () => {
  it('a caller that finds a call in flight gets the next call, shared with everyone who came meanwhile', async () => {
    const gates: Array<ReturnType<typeof deferred<number>>> = [];
    const fresh = coalesceFresh(() => {
      const g = deferred<number>();
      gates.push(g);
      return g.promise;
    });
    const first = fresh();
    // Both came after call 1 started: they must not get its (older) answer.
    const second = fresh();
    const third = fresh();
    expect(gates).toHaveLength(1);
    gates[0]!.resolve(1);
    expect(await first).toBe(1);
    await new Promise(r => setImmediate(r));
    expect(gates).toHaveLength(2);
    gates[1]!.resolve(2);
    expect(await Promise.all([second, third])).toEqual([2, 2]);
    // Nothing in flight: a new call at once.
    const fourth = fresh();
    expect(gates).toHaveLength(3);
    gates[2]!.resolve(3);
    expect(await fourth).toBe(3);
  });

  it('a failed call fails its callers only; the waiting callers get a call of their own', async () => {
    const gates: Array<ReturnType<typeof deferred<number>>> = [];
    const fresh = coalesceFresh(() => {
      const g = deferred<number>();
      gates.push(g);
      return g.promise;
    });
    const first = fresh();
    const second = fresh();
    gates[0]!.reject(new Error('boom'));
    await expect(first).rejects.toThrow('boom');
    await new Promise(r => setImmediate(r));
    gates[1]!.resolve(5);
    expect(await second).toBe(5);
  });

  it('waitFor lets one caller stop waiting on a shared call', async () => {
    const g = deferred<number>();
    const ac = new AbortController();
    const mine = waitFor(g.promise, ac.signal);
    ac.abort(new Error('stopped'));
    await expect(mine).rejects.toThrow('stopped');
    g.resolve(1);
    expect(await waitFor(g.promise, undefined)).toBe(1);
  });
});
