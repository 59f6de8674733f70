/**
 * The few S3 XML documents the simulator reads and writes. Responses are built as strings;
 * the one request body it parses (CompleteMultipartUpload) is flat enough for a tolerant
 * regular-expression reader.
 */
import type { CompletePart, PartInfo } from '../store.ts';
import type { StoredObjectInfo } from '../types.ts';

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';

export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, c =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;',
  );
}

export function xmlUnescape(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_m, e: string) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower] ?? '';
  });
}

/** `<Name>value</Name>`, escaped; nothing when the value is undefined. */
export function el(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${xmlEscape(String(value))}</${name}>`;
}

export function doc(root: string, body: string): string {
  return `${HEAD}<${root} xmlns="${NS}">${body}</${root}>`;
}

/** Checksum elements as S3 names them (ChecksumCRC32, ChecksumCRC64NVME, ...). */
export function checksumElementName(algorithm: string): string {
  return `Checksum${algorithm.toUpperCase()}`;
}

export function partXml(p: PartInfo): string {
  return (
    '<Part>' +
    el('PartNumber', p.partNumber) +
    el('LastModified', p.lastModified.toISOString()) +
    el('ETag', p.etag) +
    el('Size', p.size) +
    (p.checksum ? el(checksumElementName(p.checksum.algorithm), p.checksum.value) : '') +
    '</Part>'
  );
}

export function objectXml(o: StoredObjectInfo, encode: (s: string) => string): string {
  return (
    '<Contents>' +
    el('Key', encode(o.key)) +
    el('LastModified', o.lastModified.toISOString()) +
    el('ETag', o.etag) +
    el('Size', o.size) +
    el('StorageClass', 'STANDARD') +
    '</Contents>'
  );
}

/** `encoding-type=url` keys: S3 form-encodes them (space as "+"). */
export function urlEncodeKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

const ALGORITHMS = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

/** Parses a CompleteMultipartUpload body; throws MalformedXML-worthy errors as undefined. */
export function parseCompleteBody(xml: string): CompletePart[] | undefined {
  if (!/<CompleteMultipartUpload[\s>]/.test(xml)) return undefined;
  const parts: CompletePart[] = [];
  for (const m of xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
    const body = m[1] ?? '';
    const field = (name: string): string | undefined => {
      const f = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(body);
      return f ? xmlUnescape(f[1] ?? '').trim() : undefined;
    };
    const partNumber = Number(field('PartNumber'));
    const etag = field('ETag');
    if (!Number.isInteger(partNumber) || etag === undefined) return undefined;
    const part: CompletePart = { partNumber, etag };
    for (const alg of ALGORITHMS) {
      const value = field(`Checksum${alg}`);
      if (value !== undefined) part.checksum = { algorithm: alg.toLowerCase(), value };
    }
    parts.push(part);
  }
  return parts;
}
