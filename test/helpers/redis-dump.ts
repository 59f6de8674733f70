/**
 * Everything a Redis holds, as text, for sweeps: every key (SCAN) with its type, TTL and
 * value read by type, and the append-only files as written (they keep values that were
 * overwritten or deleted since).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';

export interface DumpedKey {
  key: string;
  type: string;
  /** Milliseconds left, -1 without a TTL. */
  pttl: number;
  /** Hash fields, list/set/zset members or stream entries; [value] for a string. */
  values: string[];
  /** Number of fields or members (1 for a string). */
  size: number;
}

export async function scanKeys(redis: Redis, match = '*'): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return [...new Set(keys)].sort();
}

export async function dumpKey(redis: Redis, key: string): Promise<DumpedKey | undefined> {
  const type = await redis.type(key);
  const pttl = await redis.pttl(key);
  let values: string[];
  switch (type) {
    case 'none':
      return undefined;
    case 'string':
      values = [(await redis.get(key)) ?? ''];
      break;
    case 'hash': {
      const h = await redis.hgetall(key);
      values = Object.entries(h).flat();
      break;
    }
    case 'list':
      values = await redis.lrange(key, 0, -1);
      break;
    case 'set':
      values = await redis.smembers(key);
      break;
    case 'zset':
      values = await redis.zrange(key, 0, -1, 'WITHSCORES');
      break;
    case 'stream': {
      const entries = await redis.xrange(key, '-', '+');
      values = entries.flatMap(([id, fields]) => [id, ...fields]);
      break;
    }
    default:
      values = [`<${type}>`];
  }
  const size = type === 'string' ? 1 : type === 'hash' ? values.length / 2 : values.length;
  return { key, type, pttl, values, size: type === 'zset' ? size / 2 : size };
}

/** Every key with its value. */
export async function dumpRedis(redis: Redis): Promise<DumpedKey[]> {
  const out: DumpedKey[] = [];
  for (const key of await scanKeys(redis)) {
    const d = await dumpKey(redis, key);
    if (d) out.push(d);
  }
  return out;
}

/** The dump as one text (keys and values), for `includes` checks. */
export function dumpText(keys: DumpedKey[]): string {
  return keys.map(k => `${k.key}\n${k.values.join('\n')}`).join('\n');
}

/** The append-only files of a Redis data dir (Redis 7: appendonlydir/*), as text. */
export function readAof(dir: string): string {
  const aofDir = join(dir, 'appendonlydir');
  const files = existsSync(aofDir)
    ? readdirSync(aofDir).map(f => join(aofDir, f))
    : readdirSync(dir)
        .filter(f => f.endsWith('.aof'))
        .map(f => join(dir, f));
  return files.map(f => readFileSync(f).toString('latin1')).join('\n');
}
