/** Byte sizes with units, as the environment accepts them (`16MiB`, `5 GB`, `1048576`). */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1000,
  kib: KiB,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: MiB,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: GiB,
  t: 1000 ** 4,
  tb: 1000 ** 4,
  tib: 1024 * GiB,
};

/** Parses `123`, `16MiB`, `1.5 GB`; returns undefined when the text is not a size. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const factor = UNITS[(m[2] ?? '').toLowerCase()];
  if (factor === undefined) return undefined;
  const value = Math.round(Number(m[1]) * factor);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
