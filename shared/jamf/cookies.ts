/**
 * A one-host cookie jar for Jamf Cloud's sticky sessions: every Set-Cookie the server
 * sends (APBALANCEID from its load balancer, set on the token call) is kept and sent back
 * on every later call, so calls that depend on each other reach the same cluster node.
 * Domain and Path are not checked: the jar belongs to one client talking to one host.
 * A cookie set with an empty value, `Max-Age<=0` or an `Expires` in the past is removed.
 */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  /** Takes in the Set-Cookie header(s) of a response. */
  store(setCookie: string | readonly string[] | undefined, now: number = Date.now()): void {
    if (setCookie === undefined) return;
    const lines: readonly string[] = typeof setCookie === 'string' ? [setCookie] : setCookie;
    for (const line of lines) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some(a => {
        const i = a.indexOf('=');
        const k = (i === -1 ? a : a.slice(0, i)).trim();
        const v = i === -1 ? '' : a.slice(i + 1).trim();
        if (/^max-age$/i.test(k)) return Number(v) <= 0;
        if (/^expires$/i.test(k)) return Date.parse(v) <= now;
        return false;
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** The Cookie header to send, or undefined when the jar is empty. */
  header(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}
