/**
 * The simulator's temporary S3 credentials (what POST /api/v1/jcds/files hands out), kept in
 * memory and written through to `<dataDir>/credentials.json` so a simulator restart keeps
 * the keys a running upload holds.
 *
 * Ids look like STS session keys ("ASIA" + 16 characters), secrets and session tokens are
 * random. Credentials expire: the S3 side looks them up with `get` and answers ExpiredToken
 * past `expiresAt`. `expireAll` is the test fault switch.
 *
 * One extra, internal credential signs the presigned download URLs (Jamf signs those with
 * its own keys, not the client's): `expireAll` leaves it alone, so the fault hits the
 * client's upload credentials only; presigned URLs expire through their own X-Amz-Expires.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CredentialRegistry, IssuedCredential } from './types.ts';

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** Expired credentials are kept this long (so S3 can say ExpiredToken, not InvalidAccessKeyId). */
const KEEP_EXPIRED_MS = 24 * 3600_000;
/** The internal presigning credential lives this long and is replaced when under half is left. */
const INTERNAL_TTL_MS = 48 * 3600_000;

interface StoredCredential extends IssuedCredential {
  internal?: boolean;
}

interface CredentialFile {
  credentials: StoredCredential[];
}

function randomId(): string {
  const bytes = randomBytes(16);
  let id = 'ASIA';
  for (const b of bytes) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return id;
}

function randomSecret(): string {
  return randomBytes(30).toString('base64').replace(/\+/g, 'x').replace(/\//g, 'y');
}

export class FileCredentialRegistry implements CredentialRegistry {
  readonly file: string;
  private readonly byId = new Map<string, StoredCredential>();
  private readonly now: () => number;

  constructor(dataDir: string, options: { now?: () => number } = {}) {
    this.file = join(dataDir, 'credentials.json');
    this.now = options.now ?? Date.now;
    this.load();
  }

  issue(ttlSeconds: number): IssuedCredential {
    return this.add(ttlSeconds * 1000, false);
  }

  renew(ttlSeconds: number): IssuedCredential {
    return this.add(ttlSeconds * 1000, false);
  }

  get(accessKeyId: string): IssuedCredential | undefined {
    const c = this.byId.get(accessKeyId);
    return c ? publicView(c) : undefined;
  }

  expireAll(): void {
    const now = this.now();
    for (const c of this.byId.values()) {
      if (!c.internal && c.expiresAt > now) c.expiresAt = now - 1;
    }
    this.save();
  }

  /** The credential that signs presigned download URLs valid for `ttlSeconds` from now. */
  presignCredential(ttlSeconds: number): IssuedCredential {
    const now = this.now();
    let best: StoredCredential | undefined;
    for (const c of this.byId.values()) {
      if (c.internal && (!best || c.expiresAt > best.expiresAt)) best = c;
    }
    const needed = now + ttlSeconds * 1000;
    if (best && best.expiresAt > needed && best.expiresAt - now > INTERNAL_TTL_MS / 2) {
      return publicView(best);
    }
    return this.add(Math.max(INTERNAL_TTL_MS, ttlSeconds * 1000 + INTERNAL_TTL_MS / 2), true);
  }

  private add(ttlMs: number, internal: boolean): IssuedCredential {
    const c: StoredCredential = {
      accessKeyId: randomId(),
      secretAccessKey: randomSecret(),
      sessionToken: randomBytes(96).toString('base64'),
      expiresAt: this.now() + ttlMs,
      ...(internal ? { internal: true } : {}),
    };
    this.byId.set(c.accessKeyId, c);
    this.prune();
    this.save();
    return publicView(c);
  }

  private prune(): void {
    const cutoff = this.now() - KEEP_EXPIRED_MS;
    for (const [id, c] of this.byId) if (c.expiresAt < cutoff) this.byId.delete(id);
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const parsed = JSON.parse(text) as CredentialFile;
    for (const c of parsed.credentials) this.byId.set(c.accessKeyId, c);
  }

  private save(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const body: CredentialFile = { credentials: [...this.byId.values()] };
    writeFileSync(tmp, JSON.stringify(body), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

function publicView(c: StoredCredential): IssuedCredential {
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    expiresAt: c.expiresAt,
  };
}
