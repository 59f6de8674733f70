/**
 * Local file hashes cached in Redis by path, valid while the file's size and mtime are
 * the ones hashed: a nightly sync over hundreds of unchanged multi-GiB packages reads no
 * file again. An entry holds the hashes computed so far (SHA-256 for sync up; MD5 and
 * SHA3-512 for sync down and the fallbacks); a hash an entry lacks is computed and added.
 * Entries of earlier versions hold no SHA-256: sync up hashes those files again. A
 * download that verified a file records its hashes too (the bytes are Jamf's, their
 * hashes are known).
 *
 * Bounded (docs/reliability.md, "Redis key families"): one Redis hash per folder,
 * `{jcds}:hash-cache:<digest of the folder's absolute path>`, one field per absolute file
 * path, so a changed file replaces its entry instead of adding one.
 * - Each sync run of the folder prunes it (`prune`): an entry whose file is no longer in
 *   the folder, and was not looked at by this run, is deleted. The hash holds at most the
 *   folder's entries (plus the files this run resolved a link to).
 * - The key expires HASH_CACHE_TTL_SECONDS after the last sync run of the folder (each run
 *   sets it again; a download sets it only on a key without one), so a folder nobody
 *   syncs any more leaves nothing behind.
 * The single `{jcds}:hash-cache` hash of earlier versions, never pruned, is deleted by
 * the first sync run (a cache: the next runs hash again, once).
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/errors.ts';
import { hashFileWith, type HashKind } from '../../shared/hash/index.ts';
import { QUEUE_PREFIX } from '../../shared/queues/names.ts';

/** The one hash of versions before the per-folder cache (deleted by any sync run). */
export const LEGACY_HASH_CACHE_KEY = `${QUEUE_PREFIX}:hash-cache`;

/**
 * How long a folder's cache outlives its last sync run: a monthly schedule still finds
 * its hashes, a folder no longer synced is forgotten.
 */
export const HASH_CACHE_TTL_SECONDS = 90 * 24 * 3600;

/** The cache of one folder's files (any path spelling of the folder: it is resolved). */
export function hashCacheKey(dir: string): string {
  const digest = createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 32);
  return `${QUEUE_PREFIX}:hash-cache:${digest}`;
}

// HSET, and a TTL only on a key without one: a download keeps a folder's cache from
// expiring no longer than a sync run would.
const SET_ENTRY = `redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
if redis.call('ttl', KEYS[1]) < 0 then redis.call('expire', KEYS[1], ARGV[3]) end
return 1`;

interface Entry {
  size: number;
  mtimeMs: number;
  sha256?: string;
  md5?: string;
  sha3_512?: string;
}

const KINDS: readonly HashKind[] = ['sha256', 'sha3_512', 'md5'];
const HEX = /^[0-9a-f]+$/;

/** The hashes a cache entry (or what a caller gives) holds, by kind. */
export type CachedHashes = Partial<Record<HashKind, string>>;

function hashesOf(e: Partial<Entry>): CachedHashes {
  const out: CachedHashes = {};
  for (const k of KINDS) {
    const v = e[k];
    if (typeof v === 'string' && HEX.test(v)) out[k] = v;
  }
  return out;
}

export interface HashCounters {
  hashesComputed: number;
  hashCacheHits: number;
  bytesHashed: number;
}

export interface StatInfo {
  size: number;
  mtimeMs: number;
}

/** The cache of one folder. */
export class HashCache {
  readonly key: string;
  private readonly redis: Redis;
  private readonly dir: string;
  /** Paths this instance (one sync run) looked up or stored: kept by `prune`. */
  private readonly seen = new Set<string>();

  constructor(redis: Redis, dir: string) {
    this.redis = redis;
    this.dir = resolve(dir);
    this.key = hashCacheKey(this.dir);
  }

  /** The cached hashes of `path` while its size and mtime are the ones hashed ({} else). */
  async get(path: string, st: StatInfo): Promise<CachedHashes> {
    this.seen.add(path);
    const raw = await this.redis.hget(this.key, path);
    if (!raw) return {};
    try {
      const e = JSON.parse(raw) as Partial<Entry>;
      if (e.size === st.size && e.mtimeMs === st.mtimeMs) return hashesOf(e);
    } catch {
      // A malformed entry is a miss; it is overwritten below.
    }
    return {};
  }

  /** Records hashes of `path` at this size and mtime (replacing the entry). */
  async set(path: string, st: StatInfo, hashes: CachedHashes): Promise<void> {
    const entry: Entry = { size: st.size, mtimeMs: st.mtimeMs, ...hashesOf(hashes) };
    this.seen.add(path);
    await this.redis.eval(
      SET_ENTRY,
      1,
      this.key,
      path,
      JSON.stringify(entry),
      String(HASH_CACHE_TTL_SECONDS),
    );
  }

  async delete(path: string): Promise<void> {
    await this.redis.hdel(this.key, path);
  }

  /**
   * After a sync run's plan: deletes the entries of files that are no longer in the folder
   * and that this run did not look at, sets the key's TTL again, and deletes the cache of
   * earlier versions. Returns the number of entries deleted. A folder that cannot be
   * listed is left as it is (the run has failed on it anyway).
   */
  async prune(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return 0;
    }
    const keep = new Set([...this.seen, ...names.map(n => join(this.dir, n))]);
    const gone = (await this.redis.hkeys(this.key)).filter(p => !keep.has(p));
    for (let i = 0; i < gone.length; i += 1_000)
      await this.redis.hdel(this.key, ...gone.slice(i, i + 1_000));
    await this.redis.expire(this.key, HASH_CACHE_TTL_SECONDS);
    await this.redis.unlink(LEGACY_HASH_CACHE_KEY);
    return gone.length;
  }

  /**
   * The hashes `kinds` of `path` as it is now: from the cache when size and mtime still
   * match and the entry holds them all, otherwise the missing ones are read (one worker
   * thread each) and added to the entry. A file that changes while it is being hashed is
   * refused (FILE_CHANGED) rather than cached with a hash of a mixture.
   */
  async hash<K extends HashKind>(
    path: string,
    st: StatInfo,
    counters: HashCounters,
    signal: AbortSignal | undefined,
    kinds: readonly K[],
  ): Promise<{ [P in K]: string }> {
    const cached = await this.get(path, st);
    const missing = kinds.filter(k => cached[k] === undefined);
    if (missing.length === 0) {
      counters.hashCacheHits++;
      return cached as { [P in K]: string };
    }
    const h = await hashFileWith(path, missing, signal ? { signal } : {});
    counters.hashesComputed++;
    counters.bytesHashed += h.bytes;
    const after = await stat(path);
    if (after.size !== st.size || after.mtimeMs !== st.mtimeMs || h.bytes !== st.size) {
      throw new AppError(
        'FILE_CHANGED',
        `${path} changed while it was being hashed: it is left for the next sync run.`,
      );
    }
    const { bytes: _b, ...digests } = h;
    const hashes: CachedHashes = { ...cached, ...digests };
    await this.set(path, st, hashes);
    return hashes as { [P in K]: string };
  }
}
