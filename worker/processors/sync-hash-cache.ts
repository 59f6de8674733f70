/**
 * Local file hashes cached in Redis by path, valid while the file's size and mtime are
 * the ones hashed: a nightly sync over hundreds of unchanged multi-GiB packages reads no
 * file again. A download that verified a file records its hashes too (the bytes are
 * Jamf's, their hashes are known).
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
import { hashFile } from '../../shared/hash/index.ts';
import type { FileHashes } from '../../shared/queues/jobs.ts';
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
  md5: string;
  sha3_512: string;
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

  async get(path: string, st: StatInfo): Promise<FileHashes | undefined> {
    this.seen.add(path);
    const raw = await this.redis.hget(this.key, path);
    if (!raw) return undefined;
    try {
      const e = JSON.parse(raw) as Entry;
      if (e.size === st.size && e.mtimeMs === st.mtimeMs && e.md5 && e.sha3_512)
        return { md5: e.md5, sha3_512: e.sha3_512 };
    } catch {
      // A malformed entry is a miss; it is overwritten below.
    }
    return undefined;
  }

  async set(path: string, st: StatInfo, hashes: FileHashes): Promise<void> {
    const entry: Entry = {
      size: st.size,
      mtimeMs: st.mtimeMs,
      md5: hashes.md5,
      sha3_512: hashes.sha3_512,
    };
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
   * The hashes of `path` as it is now: from the cache when size and mtime still match,
   * otherwise read (in a worker thread) and cached. A file that changes while it is being
   * hashed is refused (FILE_CHANGED) rather than cached with a hash of a mixture.
   */
  async hash(
    path: string,
    st: StatInfo,
    counters: HashCounters,
    signal?: AbortSignal,
  ): Promise<FileHashes> {
    const cached = await this.get(path, st);
    if (cached) {
      counters.hashCacheHits++;
      return cached;
    }
    const h = await hashFile(path, signal ? { signal } : {});
    counters.hashesComputed++;
    counters.bytesHashed += h.bytes;
    const after = await stat(path);
    if (after.size !== st.size || after.mtimeMs !== st.mtimeMs || h.bytes !== st.size) {
      throw new AppError(
        'FILE_CHANGED',
        `${path} changed while it was being hashed: it is left for the next sync run.`,
      );
    }
    const hashes = { md5: h.md5, sha3_512: h.sha3_512 };
    await this.set(path, st, hashes);
    return hashes;
  }
}
