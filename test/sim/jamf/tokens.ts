/**
 * Bearer tokens: JWT-shaped strings signed (HMAC-SHA256) with a secret kept under the data
 * dir, so tokens survive a simulator restart as Jamf's do. Revocations (keep-alive,
 * invalidate-token) are written through to `revoked.json` until the token would have
 * expired anyway.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type TokenKind = 'user' | 'oauth';

export interface TokenClaims {
  kind: TokenKind;
  sub: string;
  jti: string;
  /** Epoch ms. */
  exp: number;
}

export interface IssuedToken {
  token: string;
  claims: TokenClaims;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export class TokenService {
  private readonly secret: Buffer;
  private readonly revokedFile: string;
  private readonly revoked = new Map<string, number>();
  private readonly now: () => number;

  constructor(dir: string, options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
    mkdirSync(dir, { recursive: true });
    const secretFile = join(dir, 'token-secret');
    try {
      this.secret = Buffer.from(readFileSync(secretFile, 'utf8').trim(), 'hex');
    } catch {
      this.secret = randomBytes(32);
      writeFileSync(secretFile, this.secret.toString('hex'), { mode: 0o600 });
    }
    this.revokedFile = join(dir, 'revoked.json');
    try {
      const list = JSON.parse(readFileSync(this.revokedFile, 'utf8')) as Record<string, number>;
      for (const [jti, exp] of Object.entries(list)) this.revoked.set(jti, exp);
    } catch {
      // No revocations yet.
    }
  }

  issue(kind: TokenKind, sub: string, ttlSeconds: number): IssuedToken {
    const claims: TokenClaims = {
      kind,
      sub,
      jti: randomUUID(),
      exp: this.now() + ttlSeconds * 1000,
    };
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = b64url(JSON.stringify(claims));
    const sig = b64url(this.sign(`${header}.${payload}`));
    return { token: `${header}.${payload}.${sig}`, claims };
  }

  /** The claims of a valid, unexpired, unrevoked token; undefined otherwise. */
  verify(token: string): TokenClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [header, payload, sig] = parts as [string, string, string];
    const expected = this.sign(`${header}.${payload}`);
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: TokenClaims;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    } catch {
      return undefined;
    }
    if (claims.exp <= this.now() || this.revoked.has(claims.jti)) return undefined;
    return claims;
  }

  revoke(claims: TokenClaims): void {
    const now = this.now();
    for (const [jti, exp] of this.revoked) if (exp <= now) this.revoked.delete(jti);
    this.revoked.set(claims.jti, claims.exp);
    const tmp = `${this.revokedFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.revoked)));
    renameSync(tmp, this.revokedFile);
  }

  private sign(text: string): Buffer {
    return createHmac('sha256', this.secret).update(text).digest();
  }
}
