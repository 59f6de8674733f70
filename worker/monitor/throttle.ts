/**
 * Failed-login throttling for the monitor's Basic auth. Basic auth has no session: every
 * request carries the password, so without a limit a script can try passwords as fast as
 * the monitor answers. Two limits, both over a window (default 5 minutes):
 *
 * - per client address (an IPv6 client by its /64, which one host usually owns whole):
 *   after `perAddress` wrong passwords, that address gets 429 with Retry-After until its
 *   window ends, whatever it sends (a right password included: otherwise the lock-out would
 *   only slow the guesses down, not stop them);
 * - overall: after `overall` wrong passwords from all addresses together (a guesser with
 *   many addresses), only addresses that logged in successfully within `knownForMs` are
 *   let through (the operator keeps the dashboard); everyone else gets 429 until the
 *   window ends.
 *
 * A request without credentials (a browser's first request, before it asks the user) is
 * not a failure. Memory is bounded: at most `maxAddresses` addresses are tracked (the
 * oldest go first, expired or not); a flood of addresses that pushes entries out
 * is what the overall limit is for. Addresses are the socket's peer: behind a reverse
 * proxy every client is the proxy, and the per-address limit acts as a second overall one
 * (X-Forwarded-For is not trusted: any client can send it).
 */
import { isIP } from 'node:net';

export interface LoginThrottleOptions {
  /** Wrong passwords per address within a window before it is locked out. @defaultValue 5 */
  perAddress?: number;
  /** Wrong passwords from all addresses within a window before only known ones get in. @defaultValue 100 */
  overall?: number;
  /** @defaultValue 300_000 (5 minutes) */
  windowMs?: number;
  /** How long an address that logged in stays let through the overall limit. @defaultValue 86_400_000 (a day) */
  knownForMs?: number;
  /** Addresses tracked at most (failures, and successes). @defaultValue 10_000 */
  maxAddresses?: number;
  /** The clock (tests). @defaultValue Date.now */
  now?: () => number;
}

export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Window {
  start: number;
  failures: number;
}

/** The key an address is counted under: IPv4 as is, IPv6 by its /64 prefix. */
export function addressKey(address: string | undefined): string {
  const a = (address ?? 'unknown').toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (isIP(a) !== 6) return a;
  const [head = '', tail = ''] = a.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = a.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map(g => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export class LoginThrottle {
  private readonly perAddress: number;
  private readonly overall: number;
  private readonly windowMs: number;
  private readonly knownForMs: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;
  private readonly failures = new Map<string, Window>();
  /** Addresses that logged in successfully, with when (insertion order: oldest first). */
  private readonly known = new Map<string, number>();
  private global: Window = { start: 0, failures: 0 };

  constructor(options: LoginThrottleOptions = {}) {
    this.perAddress = options.perAddress ?? 5;
    this.overall = options.overall ?? 100;
    this.windowMs = options.windowMs ?? 300_000;
    this.knownForMs = options.knownForMs ?? 86_400_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** How many addresses are tracked (failures and successes): bounded by maxAddresses each. */
  get size(): { failures: number; known: number } {
    return { failures: this.failures.size, known: this.known.size };
  }

  private retryAfter(w: Window, t: number): number {
    return Math.max(1, Math.ceil((w.start + this.windowMs - t) / 1000));
  }

  private live(w: Window | undefined, t: number): w is Window {
    return w !== undefined && t - w.start < this.windowMs;
  }

  /** Whether an attempt from `address` may be checked at all. */
  check(address: string | undefined): ThrottleVerdict {
    const t = this.now();
    const key = addressKey(address);
    const w = this.failures.get(key);
    if (this.live(w, t) && w.failures >= this.perAddress)
      return { allowed: false, retryAfterSeconds: this.retryAfter(w, t) };
    if (this.live(this.global, t) && this.global.failures >= this.overall) {
      const ok = this.known.get(key);
      if (ok === undefined || t - ok >= this.knownForMs)
        return { allowed: false, retryAfterSeconds: this.retryAfter(this.global, t) };
    }
    return { allowed: true };
  }

  /** Records a wrong user name or password from `address`. */
  failed(address: string | undefined): void {
    const t = this.now();
    const key = addressKey(address);
    if (!this.live(this.global, t)) this.global = { start: t, failures: 0 };
    this.global.failures++;
    const w = this.failures.get(key);
    if (this.live(w, t)) {
      w.failures++;
      return;
    }
    this.failures.delete(key);
    this.makeRoom(this.failures);
    this.failures.set(key, { start: t, failures: 1 });
  }

  /** Records a successful login: the address's failures are forgotten, and it is known. */
  succeeded(address: string | undefined): void {
    const t = this.now();
    const key = addressKey(address);
    this.failures.delete(key);
    this.known.delete(key);
    this.makeRoom(this.known);
    this.known.set(key, t);
  }

  /**
   * Keeps `map` below maxAddresses by dropping its oldest entries: both maps are in the
   * order of their timestamps (an entry is re-inserted when its time changes), so the
   * expired ones come first and this costs O(1) per insert.
   */
  private makeRoom(map: Map<string, unknown>): void {
    for (const k of map.keys()) {
      if (map.size < this.maxAddresses) return;
      map.delete(k);
    }
  }
}
