/**
 * RSQL filters as the Jamf Pro API takes them (`filter=fileName=="a.pkg";categoryId!=-1`):
 * comparisons `==`, `!=`, `=in=(…)`, `=out=(…)`, `<` `<=` `>` `>=` (and `=lt=` `=le=` `=gt=`
 * `=ge=`), `;` or `and` for AND, `,` or `or` for OR, parentheses for grouping, values quoted
 * ("…" or '…', backslash escapes) or bare, `*` a wildcard in `==`/`!=`/`=in=`/`=out=`.
 *
 * String comparisons ignore case (Jamf's MySQL collation does; UNVERIFIED for every field).
 * Numbers compare as numbers when both sides are numeric.
 */
import { JamfApiError } from './errors.ts';

export type Getter = (field: string) => string | number | boolean | null | undefined;

type RsqlNode =
  | { kind: 'and' | 'or'; items: RsqlNode[] }
  | { kind: 'cmp'; field: string; op: string; values: string[] };

const OPERATORS: Record<string, string> = {
  '==': '==',
  '!=': '!=',
  '=in=': 'in',
  '=out=': 'out',
  '<': '<',
  '=lt=': '<',
  '<=': '<=',
  '=le=': '<=',
  '>': '>',
  '=gt=': '>',
  '>=': '>=',
  '=ge=': '>=',
};

function syntaxError(text: string, at: number): JamfApiError {
  return new JamfApiError(
    400,
    'INVALID_RSQL_FILTER',
    `Invalid filter near position ${at}: ${text}`,
    'filter',
  );
}

class Parser {
  private pos = 0;
  private readonly text: string;

  constructor(text: string) {
    this.text = text;
  }

  parse(): RsqlNode {
    const node = this.or();
    this.ws();
    if (this.pos < this.text.length) throw syntaxError(this.text, this.pos);
    return node;
  }

  private ws(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos] ?? '')) this.pos++;
  }

  /** Consumes `;`/`,` or the word form (`and`/`or` between spaces). */
  private logical(symbol: string, word: string): boolean {
    this.ws();
    if (this.text[this.pos] === symbol) {
      this.pos++;
      return true;
    }
    const rest = this.text.slice(this.pos);
    const m = new RegExp(`^${word}\\s`, 'i').exec(rest);
    if (m && this.pos > 0 && /\s/.test(this.text[this.pos - 1] ?? '')) {
      this.pos += m[0].length;
      return true;
    }
    return false;
  }

  private or(): RsqlNode {
    const items = [this.and()];
    while (this.logical(',', 'or')) items.push(this.and());
    return items.length === 1 ? (items[0] as RsqlNode) : { kind: 'or', items };
  }

  private and(): RsqlNode {
    const items = [this.primary()];
    while (this.logical(';', 'and')) items.push(this.primary());
    return items.length === 1 ? (items[0] as RsqlNode) : { kind: 'and', items };
  }

  private primary(): RsqlNode {
    this.ws();
    if (this.text[this.pos] === '(') {
      this.pos++;
      const node = this.or();
      this.ws();
      if (this.text[this.pos] !== ')') throw syntaxError(this.text, this.pos);
      this.pos++;
      return node;
    }
    return this.comparison();
  }

  private comparison(): RsqlNode {
    const sel = /^[A-Za-z_][\w.]*/.exec(this.text.slice(this.pos));
    if (!sel) throw syntaxError(this.text, this.pos);
    this.pos += sel[0].length;
    this.ws();
    const opMatch = /^(==|!=|<=|>=|<|>|=[a-z]*=)/i.exec(this.text.slice(this.pos));
    const op = opMatch ? OPERATORS[opMatch[0].toLowerCase()] : undefined;
    if (!opMatch || !op) throw syntaxError(this.text, this.pos);
    this.pos += opMatch[0].length;
    this.ws();
    const values: string[] = [];
    if (this.text[this.pos] === '(') {
      this.pos++;
      do {
        this.ws();
        values.push(this.value());
        this.ws();
      } while (this.text[this.pos] === ',' && ++this.pos);
      if (this.text[this.pos] !== ')') throw syntaxError(this.text, this.pos);
      this.pos++;
    } else {
      values.push(this.value());
    }
    if (op !== 'in' && op !== 'out' && values.length !== 1) throw syntaxError(this.text, this.pos);
    return { kind: 'cmp', field: sel[0], op, values };
  }

  private value(): string {
    const quote = this.text[this.pos];
    if (quote === '"' || quote === "'") {
      let out = '';
      this.pos++;
      while (this.pos < this.text.length && this.text[this.pos] !== quote) {
        if (this.text[this.pos] === '\\') this.pos++;
        out += this.text[this.pos] ?? '';
        this.pos++;
      }
      if (this.text[this.pos] !== quote) throw syntaxError(this.text, this.pos);
      this.pos++;
      return out;
    }
    const m = /^[^\s"'();,=!<>]+/.exec(this.text.slice(this.pos));
    if (!m) throw syntaxError(this.text, this.pos);
    this.pos += m[0].length;
    return m[0];
  }
}

function fieldsOf(node: RsqlNode, out: string[] = []): string[] {
  if (node.kind === 'cmp') out.push(node.field);
  else for (const n of node.items) fieldsOf(n, out);
  return out;
}

function wildcardRegex(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map(s => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 'is');
}

function equals(actual: string, expected: string): boolean {
  if (expected.includes('*')) return wildcardRegex(expected).test(actual);
  return actual.toLowerCase() === expected.toLowerCase();
}

function compare(actual: string, expected: string): number {
  const a = Number(actual);
  const b = Number(expected);
  if (actual.trim() !== '' && expected.trim() !== '' && !Number.isNaN(a) && !Number.isNaN(b)) {
    return a - b;
  }
  return actual.toLowerCase().localeCompare(expected.toLowerCase());
}

function evaluate(node: RsqlNode, get: Getter): boolean {
  if (node.kind !== 'cmp') {
    return node.kind === 'and'
      ? node.items.every(n => evaluate(n, get))
      : node.items.some(n => evaluate(n, get));
  }
  const raw = get(node.field);
  const actual = raw === null || raw === undefined ? '' : String(raw);
  const first = node.values[0] ?? '';
  switch (node.op) {
    case '==':
      return equals(actual, first);
    case '!=':
      return !equals(actual, first);
    case 'in':
      return node.values.some(v => equals(actual, v));
    case 'out':
      return !node.values.some(v => equals(actual, v));
    case '<':
      return compare(actual, first) < 0;
    case '<=':
      return compare(actual, first) <= 0;
    case '>':
      return compare(actual, first) > 0;
    default:
      return compare(actual, first) >= 0;
  }
}

/**
 * Compiles a filter into a predicate; `allowed` lists the fields Jamf lets this endpoint
 * filter on (an unknown one is a 400, as a typo should be).
 */
export function compileFilter(text: string, allowed: readonly string[]): (get: Getter) => boolean {
  const node = new Parser(text).parse();
  for (const field of fieldsOf(node)) {
    if (!allowed.includes(field)) {
      throw new JamfApiError(
        400,
        'INVALID_FIELD',
        `Filtering on ${field} is not supported; use one of ${allowed.join(', ')}`,
        'filter',
      );
    }
  }
  return get => evaluate(node, get);
}
