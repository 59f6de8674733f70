/**
 * A small RSQL (FIQL) builder for Jamf Pro API `filter` parameters, quoting values so a
 * file name holding `"`, `\`, `;`, `,`, `(` or spaces cannot change the query.
 *
 * Jamf's RSQL: `==`, `!=`, `<`, `<=`, `>`, `>=`, `=in=(a,b)`, `=out=(a,b)`; AND is `;`,
 * OR is `,`; parentheses group. Values are double-quoted with `\` escaping `"` and `\`
 * (the rsql-parser grammar). A `*` in a `==` value is a wildcard on Jamf's side and cannot
 * be escaped there, so callers that need an exact match (findPackageByFileName) also
 * compare the results themselves.
 *
 * @example
 * rsql.and(rsql.eq('fileName', 'My "App".pkg'), rsql.ne('categoryId', '-1'))
 * // fileName=="My \"App\".pkg";categoryId!="-1"
 */

const FIELD = /^[A-Za-z_][A-Za-z0-9_.]*$/;

function field(name: string): string {
  if (!FIELD.test(name)) throw new TypeError(`Not an RSQL field name: ${JSON.stringify(name)}`);
  return name;
}

/** A double-quoted RSQL value: `\` and `"` escaped. */
export function quote(value: string | number | boolean): string {
  return `"${String(value).replace(/[\\"]/g, c => `\\${c}`)}"`;
}

type Value = string | number | boolean;

export const rsql = {
  quote,
  eq: (name: string, value: Value): string => `${field(name)}==${quote(value)}`,
  ne: (name: string, value: Value): string => `${field(name)}!=${quote(value)}`,
  lt: (name: string, value: Value): string => `${field(name)}<${quote(value)}`,
  le: (name: string, value: Value): string => `${field(name)}<=${quote(value)}`,
  gt: (name: string, value: Value): string => `${field(name)}>${quote(value)}`,
  ge: (name: string, value: Value): string => `${field(name)}>=${quote(value)}`,
  in: (name: string, values: readonly Value[]): string =>
    `${field(name)}=in=(${values.map(quote).join(',')})`,
  out: (name: string, values: readonly Value[]): string =>
    `${field(name)}=out=(${values.map(quote).join(',')})`,
  and: (...parts: string[]): string => parts.map(group).join(';'),
  or: (...parts: string[]): string => parts.map(group).join(','),
};

/** Parenthesises an expression that holds a top-level OR, so AND binds as written. */
function group(expr: string): string {
  let depth = 0;
  let inQuote = false;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (inQuote) {
      if (c === '\\') i++;
      else if (c === '"') inQuote = false;
    } else if (c === '"') inQuote = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) return `(${expr})`;
  }
  return expr;
}
