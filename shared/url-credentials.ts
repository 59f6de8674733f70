/**
 * URLs that may carry a password (REDIS_URL's `user:password@` or `?password=`, a JAMF_URL
 * typed with credentials in it) are shown in messages only through `withoutCredentials`,
 * which also works on text that does not parse as a URL: a config error must be able to
 * say what is wrong with a value without printing the password in it.
 *
 * And which hosts are loopback, for the rule that a Jamf client secret travels over
 * plain http only to this machine.
 */
import { isIP } from 'node:net';

/** Query parameters whose value is a credential (REDIS_URL's unix socket form). */
const SECRET_PARAMS =
  /([?&](?:password|pass|pwd|secret|token|access_token|client_secret)=)[^&#\s]*/gi;

/**
 * The URL with any `user:password@` replaced by `***@` and credential query parameters by
 * `***`. Works by pattern, so text that does not parse (an unencoded `/` or `@` in the
 * password) is covered too: everything between `//` and the last `@` is taken as userinfo
 * (over-redacting a rare `@` in a path is the safe side).
 */
export function withoutCredentials(value: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)(.*@)?(.*)$/s.exec(value);
  const rest = m ? `${m[1]}${m[2] ? '***@' : ''}${m[3]}` : value.replace(/[^\s/@]*@/g, '***@');
  return rest.replace(SECRET_PARAMS, '$1***');
}

/** True when the text has credentials that `withoutCredentials` would hide. */
export function hasCredentials(value: string): boolean {
  return withoutCredentials(value) !== value;
}

/** 127.0.0.0/8, ::1 (and ::ffff:127.x), `localhost` and `*.localhost` (RFC 6761). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) {
    if (host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
    // An IPv4-mapped address, as typed (::ffff:127.0.0.1) or as URL prints it (::ffff:7f00:1).
    const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
    if (dotted) return dotted[1]!.startsWith('127.');
    return /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(host);
  }
  return false;
}
