/**
 * Just enough XML for the Classic API's flat `<package>` documents: read the child
 * elements of one root element (entities and CDATA decoded; nested elements kept as raw
 * text), and write elements with escaping.
 */

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decode(text: string): string {
  const cdata = /^\s*<!\[CDATA\[([\s\S]*)\]\]>\s*$/.exec(text);
  if (cdata) return cdata[1] ?? '';
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name.startsWith('#x') || name.startsWith('#X'))
      return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(parseInt(name.slice(1), 10));
    return ENTITIES[name] ?? whole;
  });
}

/** Children of `<root>` as name → text; undefined when the document has no such root. */
export function parseFlatXml(text: string, root: string): Record<string, string> | undefined {
  const body = text.replace(/<\?xml[^>]*\?>/, '').trim();
  const m = new RegExp(`^<${root}(\\s[^>]*)?>([\\s\\S]*)</${root}>$`).exec(body);
  if (!m) {
    if (new RegExp(`^<${root}(\\s[^>]*)?/>$`).test(body)) return {};
    return undefined;
  }
  const inner = m[2] ?? '';
  const out: Record<string, string> = {};
  const re = /<([A-Za-z_][\w.-]*)(\s[^>]*)?(\/>|>([\s\S]*?)<\/\1>)/g;
  for (let e = re.exec(inner); e; e = re.exec(inner)) {
    const name = e[1] ?? '';
    out[name] = e[3] === '/>' ? '' : decode(e[4] ?? '').trim();
  }
  return out;
}

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

export type XmlValue = string | number | boolean | null | XmlValue[] | { [k: string]: XmlValue };

/** `{a: 1, b: {c: "x"}}` → `<a>1</a><b><c>x</c></b>`; arrays repeat their parent's name. */
export function toXml(name: string, value: XmlValue): string {
  if (value === null) return `<${name}/>`;
  if (Array.isArray(value)) return value.map(v => toXml(name, v)).join('');
  if (typeof value === 'object') {
    const inner = Object.entries(value)
      .map(([k, v]) => toXml(k, v))
      .join('');
    return `<${name}>${inner}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}
