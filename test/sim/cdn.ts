/**
 * CloudFront-style signed download URLs: what `GET /api/v1/jcds/files/{fileName}` hands out
 * (jamf-wire-2026.md 4: `Expires`, `Signature`, `Key-Pair-Id`; HEAD gives the length, a
 * Range gives 206, there is an ETag and no redirect; short-lived).
 *
 * The simulator serves them itself on its S3 port under a path S3 cannot use (a bucket name
 * never starts with "_"):
 *
 *   <s3Endpoint>/__cdn/<fileName, percent-encoded>?Expires=<epoch s>&Signature=<sig>&Key-Pair-Id=<id>
 *
 * Each request serves the newest stored JCDS object of that file name. `Signature` stands in
 * for CloudFront's RSA-SHA1 signature of the canned policy: an HMAC-SHA256 of the URL path and
 * `Expires` with a key kept under the data dir (so URLs survive a simulator restart), in
 * CloudFront's URL-safe base64 (`+` → `-`, `=` → `_`, `/` → `~`). Past `Expires`, or with a
 * signature or key pair id that does not match, the answer is 403 AccessDenied.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The path prefix the S3 server serves signed download URLs under. */
export const CDN_PREFIX = '/__cdn/';

export type CdnVerdict = 'ok' | 'expired' | 'bad-signature';

interface KeyFile {
  keyPairId: string;
  secret: string;
}

const KEY_PAIR_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function cloudFrontBase64(buf: Buffer): string {
  return buf.toString('base64').replace(/\+/g, '-').replace(/=/g, '_').replace(/\//g, '~');
}

export class CdnSigner {
  readonly keyPairId: string;
  private readonly secret: Buffer;
  private readonly now: () => number;

  constructor(dataDir: string, options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
    const file = join(dataDir, 'cdn-key.json');
    let key: KeyFile;
    try {
      key = JSON.parse(readFileSync(file, 'utf8')) as KeyFile;
    } catch {
      let id = 'K';
      for (const b of randomBytes(13)) id += KEY_PAIR_ALPHABET[b % KEY_PAIR_ALPHABET.length];
      key = { keyPairId: id, secret: randomBytes(32).toString('hex') };
      mkdirSync(dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(key), { mode: 0o600 });
      renameSync(tmp, file);
    }
    this.keyPairId = key.keyPairId;
    this.secret = Buffer.from(key.secret, 'hex');
  }

  /** The URL path of a file's download (`/__cdn/<encoded fileName>`). */
  static path(fileName: string): string {
    return `${CDN_PREFIX}${encodeURIComponent(fileName)}`;
  }

  /** A signed download URL for `fileName`, valid for `ttlSeconds` from now. */
  sign(endpoint: string, fileName: string, ttlSeconds: number): string {
    const path = CdnSigner.path(fileName);
    // Whole seconds, as an S3 presigned URL counts them: the URL lives (ttl - 1, ttl] s.
    const expires = Math.floor(this.now() / 1000) + Math.max(1, Math.round(ttlSeconds));
    // Every value is URL-safe as it stands (digits, CloudFront base64, [A-Z0-9]).
    const query = `Expires=${expires}&Signature=${this.signature(path, expires)}&Key-Pair-Id=${this.keyPairId}`;
    return `${endpoint}${path}?${query}`;
  }

  /**
   * Checks a request for `fileName` (decoded from its path) and its decoded query. The
   * signature covers the canonical path, so a client that re-encodes the path differently
   * still matches.
   */
  verify(fileName: string, query: ReadonlyMap<string, string>): CdnVerdict {
    const rawPath = CdnSigner.path(fileName);
    const expiresText = query.get('Expires') ?? '';
    const given = query.get('Signature') ?? '';
    if (!/^\d+$/.test(expiresText) || query.get('Key-Pair-Id') !== this.keyPairId) {
      return 'bad-signature';
    }
    const expected = Buffer.from(this.signature(rawPath, Number(expiresText)));
    const actual = Buffer.from(given);
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      return 'bad-signature';
    }
    return Number(expiresText) * 1000 <= this.now() ? 'expired' : 'ok';
  }

  private signature(path: string, expires: number): string {
    return cloudFrontBase64(
      createHmac('sha256', this.secret).update(`${path}\n${expires}`).digest(),
    );
  }
}
