/**
 * The monitor's failed-login throttle (worker/monitor/throttle.ts), on a fake clock: the
 * per-address and overall limits, when they lift, and that memory stays bounded however
 * many addresses fail. The monitor-hostile integration test tries it over HTTP.
 */
import { describe, expect, it } from 'vitest';
import { addressKey, LoginThrottle } from '../../../worker/monitor/throttle.ts';

function clocked(options: ConstructorParameters<typeof LoginThrottle>[0] = {}) {
  let t = 1_000_000;
  const throttle = new LoginThrottle({ windowMs: 60_000, ...options, now: () => t });
  return { throttle, advance: (ms: number) => (t += ms) };
}

describe('LoginThrottle', () => {
  it('locks an address out after 5 failures until its window ends, then lets it try again', () => {
    const { throttle, advance } = clocked();
    for (let i = 0; i < 5; i++) {
      expect(throttle.check('10.0.0.1').allowed).toBe(true);
      throttle.failed('10.0.0.1');
      advance(1_000);
    }
    expect(throttle.check('10.0.0.1')).toEqual({ allowed: false, retryAfterSeconds: 55 });
    expect(throttle.check('10.0.0.2').allowed).toBe(true);
    advance(55_000);
    expect(throttle.check('10.0.0.1').allowed).toBe(true);
  });

  it('forgets an address failures once it logs in', () => {
    const { throttle } = clocked();
    for (let i = 0; i < 4; i++) throttle.failed('10.0.0.1');
    throttle.succeeded('10.0.0.1');
    for (let i = 0; i < 4; i++) throttle.failed('10.0.0.1');
    expect(throttle.check('10.0.0.1').allowed).toBe(true);
  });

  it('overall: past the limit only known addresses get in, until the window ends', () => {
    const { throttle, advance } = clocked({ overall: 20 });
    throttle.succeeded('192.0.2.1');
    for (let a = 0; a < 10; a++) for (let i = 0; i < 2; i++) throttle.failed(`10.0.1.${a}`);
    expect(throttle.check('10.0.2.1').allowed).toBe(false);
    expect(throttle.check('192.0.2.1').allowed).toBe(true);
    advance(60_000);
    expect(throttle.check('10.0.2.1').allowed).toBe(true);
  });

  it('a known address is known for knownForMs only', () => {
    const { throttle, advance } = clocked({ overall: 1, knownForMs: 120_000 });
    throttle.succeeded('192.0.2.1');
    advance(119_000);
    throttle.failed('10.0.0.9');
    expect(throttle.check('192.0.2.1').allowed).toBe(true);
    advance(1_000);
    expect(throttle.check('192.0.2.1').allowed).toBe(false);
  });

  it('stays bounded: 100 000 failing and 100 000 succeeding addresses keep at most maxAddresses each', () => {
    const { throttle, advance } = clocked({ maxAddresses: 1_000, overall: 1e9 });
    for (let i = 0; i < 100_000; i++) {
      throttle.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      throttle.succeeded(`172.16.${(i >> 8) & 255}.${i & 255}-${i}`);
      if (i % 1_000 === 0) advance(1);
    }
    expect(throttle.size.failures).toBeLessThanOrEqual(1_000);
    expect(throttle.size.known).toBeLessThanOrEqual(1_000);
    // The newest are kept: the address that failed last is still counted.
    for (let i = 0; i < 4; i++) throttle.failed('10.1.134.159');
    expect(throttle.check('10.1.134.159').allowed).toBe(false);
  });

  it('counts an IPv6 client by its /64, and an IPv4-mapped address as IPv4', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('::ffff:127.0.0.3')).toBe('127.0.0.3');
    expect(addressKey(undefined)).toBe('unknown');
    const { throttle } = clocked();
    for (let i = 0; i < 5; i++) throttle.failed(`2001:db8:1:2::${i + 1}`);
    expect(throttle.check('2001:db8:1:2:ffff::9').allowed).toBe(false);
    expect(throttle.check('2001:db8:1:3::1').allowed).toBe(true);
  });
});
