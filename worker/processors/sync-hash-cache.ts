/**
 * Local file hashes cached in Redis by path, valid while the file's size and mtime are
 * the ones hashed: a nightly sync over hundreds of unchanged multi-GiB packages reads no
 * file again. One Redis hash under the `{jcds}` prefix, one field per absolute path, so
 * a changed file replaces its entry instead of adding one. A download that verified a
 * file records its hashes too (the bytes are Jamf's, their hashes are known).
 */
import { stat } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/errors.ts';
import { hashFile } from '../../shared/hash/index.ts';
import type { FileHashes } from '../../shared/queues/jobs.ts';
import { QUEUE_PREFIX } from '../../shared/queues/names.ts';

export const HASH_CACHE_KEY = `${QUEUE_PREFIX}:hash-cache`;

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

export class HashCache {
  private readonly redis: Redis;

  constructor(redis: Redis) {
    this.redis = redis;
  }

  async get(path: string, st: StatInfo): Promise<FileHashes | undefined> {
    const raw = await this.redis.hget(HASH_CACHE_KEY, path);
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
    await this.redis.hset(HASH_CACHE_KEY, path, JSON.stringify(entry));
  }

  async delete(path: string): Promise<void> {
    await this.redis.hdel(HASH_CACHE_KEY, path);
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
