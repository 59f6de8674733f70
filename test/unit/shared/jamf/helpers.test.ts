import { describe, expect, it } from 'vitest';
import { refreshMarginMs } from '../../../../shared/jamf/auth.ts';
import {
  classicPackageXml,
  parseClassicId,
  xmlEscape,
} from '../../../../shared/jamf/classic-api.ts';
import { CookieJar } from '../../../../shared/jamf/cookies.ts';
import { encodePathSegment } from '../../../../shared/jamf/http.ts';
import { newPackageBody, updatePackageBody } from '../../../../shared/jamf/packages-api.ts';
import { Semaphore } from '../../../../shared/jamf/semaphore.ts';
import { JcdsCredentialsSchema, PackageSchema } from '../../../../shared/jamf/types.ts';
import { parseJamfVersion, versionAtLeast } from '../../../../shared/jamf/version.ts';

describe('encodePathSegment', () => {
  it('escapes everything that would change the path or query', () => {
    expect(encodePathSegment('My App 1.0+beta%#?.pkg')).toBe('My%20App%201.0%2Bbeta%25%23%3F.pkg');
    expect(encodePathSegment('a/b')).toBe('a%2Fb');
    expect(encodePathSegment("it's(1)*.pkg")).toBe('it%27s%281%29%2A.pkg');
    expect(encodePathSegment('Ünï.pkg')).toBe('%C3%9Cn%C3%AF.pkg');
    expect(decodeURIComponent(encodePathSegment('x +%#?&=;,ü.pkg'))).toBe('x +%#?&=;,ü.pkg');
  });
});

describe('CookieJar', () => {
  it('keeps cookies from Set-Cookie and sends them back', () => {
    const jar = new CookieJar();
    expect(jar.header()).toBeUndefined();
    jar.store([
      'APBALANCEID=aws.apse2-std-pelican3-tc-5; path=/; HttpOnly; Secure',
      'other=1; Max-Age=60',
    ]);
    expect(jar.header()).toBe('APBALANCEID=aws.apse2-std-pelican3-tc-5; other=1');
    jar.store('APBALANCEID=aws.node-2; path=/');
    expect(jar.header()).toBe('APBALANCEID=aws.node-2; other=1');
  });

  it('drops expired or emptied cookies', () => {
    const now = Date.parse('2026-11-20T10:00:00Z');
    const jar = new CookieJar();
    jar.store(['a=1', 'b=2', 'c=3', 'd=4'], now);
    jar.store(['a=x; Max-Age=0', 'b=; path=/', 'c=3; Expires=Wed, 21 Oct 2015 07:28:00 GMT'], now);
    expect(jar.header()).toBe('d=4');
    jar.store('bogus', now);
    expect(jar.header()).toBe('d=4');
  });
});

describe('versions', () => {
  it('parses Jamf Pro version strings', () => {
    expect(parseJamfVersion('11.24.0-t1718802727')).toEqual({ major: 11, minor: 24, patch: 0 });
    expect(parseJamfVersion('10.48')).toEqual({ major: 10, minor: 48, patch: 0 });
    expect(parseJamfVersion('unknown')).toBeUndefined();
  });

  it('compares versions', () => {
    const v = (s: string) => parseJamfVersion(s)!;
    expect(versionAtLeast(v('11.5.0'), 11, 5)).toBe(true);
    expect(versionAtLeast(v('11.4.9'), 11, 5)).toBe(false);
    expect(versionAtLeast(v('12.0.0'), 11, 5)).toBe(true);
    expect(versionAtLeast(v('10.99.0'), 11, 5)).toBe(false);
    expect(versionAtLeast(v('11.10.1'), 11, 10, 2)).toBe(false);
  });
});

describe('Classic API XML', () => {
  it('escapes values and drops characters XML cannot hold', () => {
    expect(xmlEscape(`a<b>&"c'\u0001`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
  });

  it('builds the package document with only the given fields', () => {
    expect(
      classicPackageXml({
        name: 'Fish & Chips <1>',
        filename: 'fish.pkg',
        priority: 5,
        category: 'Apps',
      }),
    ).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><package><name>Fish &amp; Chips &lt;1&gt;</name>' +
        '<category>Apps</category><filename>fish.pkg</filename><priority>5</priority></package>',
    );
  });

  it('reads the new id', () => {
    expect(
      parseClassicId('<?xml version="1.0" encoding="UTF-8"?><package><id>42</id></package>'),
    ).toBe(42);
    expect(parseClassicId('<package><id> 7 </id></package>')).toBe(7);
    expect(parseClassicId('<html>nope</html>')).toBeUndefined();
  });
});

describe('package bodies', () => {
  it('defaults the fields Jamf requires on create', () => {
    expect(
      newPackageBody({ packageName: 'App', fileName: 'App.pkg', info: 'i', priority: 3 }),
    ).toEqual({
      packageName: 'App',
      fileName: 'App.pkg',
      info: 'i',
      categoryId: '-1',
      priority: 3,
      fillUserTemplate: false,
      rebootRequired: false,
      osInstall: false,
      suppressUpdates: false,
      suppressFromDock: false,
      suppressEula: false,
      suppressRegistration: false,
    });
  });

  it('never sends size or read-only fields on update', () => {
    const pkg = PackageSchema.parse({
      id: '9',
      packageName: 'App',
      fileName: 'App.pkg',
      size: '1048576',
      cloudTransferStatus: 'READY',
      indexed: true,
      hashType: 'SHA3_512',
      hashValue: 'abc',
      swu: false,
    });
    expect(pkg.size).toBe(1_048_576);
    const body = updatePackageBody(pkg);
    for (const k of ['id', 'size', 'cloudTransferStatus', 'indexed'])
      expect(body).not.toHaveProperty(k);
    // Nor a hash field: Jamf would store it unchecked and show it back (issue 12).
    for (const k of ['hashType', 'hashValue', 'md5', 'sha256', 'sha3512'])
      expect(body).not.toHaveProperty(k);
    expect(body).toMatchObject({
      packageName: 'App',
      swu: false,
      categoryId: '-1',
    });
  });

  it('exposes JCDS expiration as epoch seconds and as a Date', () => {
    const creds = JcdsCredentialsSchema.parse({
      accessKeyID: 'AKIA',
      secretAccessKey: 's',
      sessionToken: 't',
      region: 'us-east-1',
      expiration: 1_800_000_000,
      bucketName: 'jcds-bucket',
      path: 'abc/',
      uuid: 'u-1',
    });
    expect(creds.expiration).toBe(1_800_000_000);
    expect(creds.expirationDate.toISOString()).toBe('2027-01-15T08:00:00.000Z');
  });
});

describe('refreshMarginMs', () => {
  it('is 10% of the lifetime, at most 60 s', () => {
    expect(refreshMarginMs(1800_000)).toBe(60_000);
    expect(refreshMarginMs(60_000)).toBe(6_000);
    expect(refreshMarginMs(2_000)).toBe(200);
    expect(refreshMarginMs(-5)).toBe(0);
    expect(refreshMarginMs(100_000, 5_000, 0.5)).toBe(5_000);
  });
});

describe('Semaphore', () => {
  it('admits at most `limit` holders and serves waiters in order', async () => {
    const sem = new Semaphore(2);
    const order: number[] = [];
    let peak = 0;
    const task = async (n: number) =>
      sem.run(async () => {
        peak = Math.max(peak, sem.inUse);
        await new Promise(r => setTimeout(r, 5));
        order.push(n);
      });
    await Promise.all([1, 2, 3, 4, 5].map(task));
    expect(peak).toBe(2);
    expect(order.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(sem.inUse).toBe(0);
  });

  it('removes an aborted waiter', async () => {
    const sem = new Semaphore(1);
    const release = await sem.acquire();
    const ac = new AbortController();
    const waiting = sem.acquire(ac.signal);
    expect(sem.waiting).toBe(1);
    ac.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(sem.waiting).toBe(0);
    release();
    release(); // a second call is harmless
    expect(sem.inUse).toBe(0);
  });
});
