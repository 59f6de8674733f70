/**
 * The flexible checksums S3 accepts (x-amz-checksum-<algorithm>): CRC32 (node:zlib),
 * CRC32C and CRC64NVME (slicing-by-8 tables here, both reflected CRCs), SHA1 and SHA256
 * (node:crypto). Digests are big-endian bytes; S3 carries them base64-encoded.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export function isChecksumAlgorithm(name: string): name is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);
}

export interface Checksum {
  update(data: Buffer): void;
  digest(): Buffer;
}

type Tables8 = [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/** Eight 256-entry tables for a reflected 32-bit CRC. */
function tables32(poly: number): Uint32Array[] {
  const t: Uint32Array[] = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = t[0] as Uint32Array;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let k = 1; k < 8; k++) {
    const prev = t[k - 1] as Uint32Array;
    const cur = t[k] as Uint32Array;
    for (let n = 0; n < 256; n++) {
      const p = prev[n] as number;
      cur[n] = ((p >>> 8) ^ (t0[p & 0xff] as number)) >>> 0;
    }
  }
  return t;
}

let crc32cTables: Uint32Array[] | undefined;

/** CRC32C (Castagnoli), continuing from `crc` (0 to start). */
export function crc32c(data: Buffer, crc = 0): number {
  const T = (crc32cTables ??= tables32(0x82f63b78));
  const [t0, t1, t2, t3, t4, t5, t6, t7] = T as Tables8;
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const lo =
      (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
  }
  for (; i < n; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Eight tables for the reflected CRC-64/NVME, each entry split into [lo, hi] 32-bit halves. */
function tables64(): { lo: Uint32Array[]; hi: Uint32Array[] } {
  const poly = 0x9a6c9329ac4bc9b5n;
  const lo = Array.from({ length: 8 }, () => new Uint32Array(256));
  const hi = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0: bigint[] = [];
  for (let n = 0; n < 256; n++) {
    let c = BigInt(n);
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ poly : c >> 1n;
    t0.push(c);
  }
  let prev = t0;
  for (let k = 0; k < 8; k++) {
    const cur = k === 0 ? t0 : prev.map(p => (p >> 8n) ^ (t0[Number(p & 0xffn)] as bigint));
    cur.forEach((v, n) => {
      (lo[k] as Uint32Array)[n] = Number(v & 0xffffffffn);
      (hi[k] as Uint32Array)[n] = Number(v >> 32n);
    });
    prev = cur;
  }
  return { lo, hi };
}

let crc64Tables: { lo: Uint32Array[]; hi: Uint32Array[] } | undefined;

/** CRC-64/NVME over `data`, continuing from the state [lo, hi] (both 0 to start). */
export function crc64nvme(data: Buffer, state: [number, number] = [0, 0]): [number, number] {
  const { lo: L, hi: H } = (crc64Tables ??= tables64());
  const [L0, L1, L2, L3, L4, L5, L6, L7] = L as Tables8;
  const [H0, H1, H2, H3, H4, H5, H6, H7] = H as Tables8;
  let lo = ~state[0] >>> 0;
  let hi = ~state[1] >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a =
      (lo ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    const b =
      (hi ^ (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24))) >>>
      0;
    const i0 = a & 0xff,
      i1 = (a >>> 8) & 0xff,
      i2 = (a >>> 16) & 0xff,
      i3 = a >>> 24;
    const i4 = b & 0xff,
      i5 = (b >>> 8) & 0xff,
      i6 = (b >>> 16) & 0xff,
      i7 = b >>> 24;
    lo = (L7[i0]! ^ L6[i1]! ^ L5[i2]! ^ L4[i3]! ^ L3[i4]! ^ L2[i5]! ^ L1[i6]! ^ L0[i7]!) >>> 0;
    hi = (H7[i0]! ^ H6[i1]! ^ H5[i2]! ^ H4[i3]! ^ H3[i4]! ^ H2[i5]! ^ H1[i6]! ^ H0[i7]!) >>> 0;
  }
  for (; i < n; i++) {
    const idx = (lo ^ data[i]!) & 0xff;
    lo = (((lo >>> 8) | (hi << 24)) ^ L0[idx]!) >>> 0;
    hi = ((hi >>> 8) ^ H0[idx]!) >>> 0;
  }
  return [~lo >>> 0, ~hi >>> 0];
}

export function createChecksum(algorithm: ChecksumAlgorithm): Checksum {
  switch (algorithm) {
    case 'crc32': {
      let c = 0;
      return {
        update: d => (c = crc32(d, c)),
        digest: () => Buffer.from([c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff]),
      };
    }
    case 'crc32c': {
      let c = 0;
      return {
        update: d => (c = crc32c(d, c)),
        digest: () => Buffer.from([c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff]),
      };
    }
    case 'crc64nvme': {
      let s: [number, number] = [0, 0];
      return {
        update: d => (s = crc64nvme(d, s)),
        digest: () => {
          const out = Buffer.alloc(8);
          out.writeUInt32BE(s[1], 0);
          out.writeUInt32BE(s[0], 4);
          return out;
        },
      };
    }
    case 'sha1':
    case 'sha256': {
      const h = createHash(algorithm);
      return { update: d => h.update(d), digest: () => h.digest() };
    }
  }
}
