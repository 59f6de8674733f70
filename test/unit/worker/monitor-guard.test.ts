/**
 * Where a write comes from (worker/monitor/guard.ts crossSiteReason): the header
 * combinations browsers send, decided without a server. The monitor-hostile and
 * monitor-browser integration tests send them over HTTP and from Chromium.
 */
import { describe, expect, it } from 'vitest';
import { crossSiteReason } from '../../../worker/monitor/guard.ts';

const from = (headers: Record<string, string>) => (name: string) => headers[name];

describe('crossSiteReason', () => {
  it('lets the dashboard page through: Sec-Fetch-Site same-origin or none', () => {
    expect(crossSiteReason(from({ 'sec-fetch-site': 'same-origin', host: 'a:1' }))).toBeUndefined();
    expect(crossSiteReason(from({ 'sec-fetch-site': 'none', host: 'a:1' }))).toBeUndefined();
  });

  it('refuses other sites by Sec-Fetch-Site, whatever Origin claims', () => {
    for (const site of ['cross-site', 'same-site', 'bogus'])
      expect(
        crossSiteReason(
          from({ 'sec-fetch-site': site, origin: 'http://127.0.0.1:3000', host: '127.0.0.1:3000' }),
        ),
      ).toContain(`Sec-Fetch-Site: ${site}`);
  });

  it('without Sec-Fetch-Site, compares Origin with Host (scheme aside, default ports dropped)', () => {
    const ok = [
      ['http://127.0.0.1:3000', '127.0.0.1:3000'],
      ['https://Dash.Example.com', 'dash.example.com'],
      ['https://dash.example.com:443', 'dash.example.com'],
      // A TLS proxy in front that passes Host through: the browser's origin is https.
      ['https://dash.example.com', 'dash.example.com'],
      ['http://[::1]:3000', '[::1]:3000'],
    ];
    for (const [origin, host] of ok)
      expect(crossSiteReason(from({ origin: origin!, host: host! })), origin).toBeUndefined();
    const refused = [
      ['https://evil.example', 'dash.example.com'],
      ['http://127.0.0.1:3001', '127.0.0.1:3000'],
      ['http://dash.example.com.evil.example', 'dash.example.com'],
      ['null', '127.0.0.1:3000'],
      ['file://', '127.0.0.1:3000'],
      ['chrome-extension://abc', 'abc'],
    ];
    for (const [origin, host] of refused)
      expect(crossSiteReason(from({ origin: origin!, host: host! })), origin).toMatch(/Origin/);
  });

  it('refuses a write that names no origin at all', () => {
    expect(crossSiteReason(from({ host: '127.0.0.1:3000' }))).toContain('no Origin header');
  });
});
