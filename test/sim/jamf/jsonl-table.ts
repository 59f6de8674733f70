/**
 * A tiny persistent table: records with numeric ids, kept in memory and written through to
 * an append-only JSON-lines log (`put`, `del` and `seq` lines). Appending one line per change
 * keeps creating thousands of packages cheap; the log is compacted on load. A torn last
 * line (the process killed mid-append) is ignored.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

type LogLine<T> = { op: 'put'; rec: T } | { op: 'del'; id: number } | { op: 'seq'; next: number };

export class JsonlTable<T extends { id: number }> {
  readonly file: string;
  private readonly rows = new Map<number, T>();
  private nextId = 1;

  constructor(file: string, seed: Array<Omit<T, 'id'>> = []) {
    this.file = file;
    mkdirSync(dirname(file), { recursive: true });
    const existed = this.load();
    this.compact();
    if (!existed) for (const rec of seed) this.insert(rec);
  }

  all(): T[] {
    return [...this.rows.values()];
  }

  get(id: number): T | undefined {
    return this.rows.get(id);
  }

  get size(): number {
    return this.rows.size;
  }

  insert(rec: Omit<T, 'id'>): T {
    const row = { ...rec, id: this.nextId++ } as T;
    this.rows.set(row.id, row);
    this.append({ op: 'put', rec: row });
    return row;
  }

  update(row: T): void {
    if (!this.rows.has(row.id)) throw new Error(`no row ${row.id} in ${this.file}`);
    this.rows.set(row.id, row);
    this.append({ op: 'put', rec: row });
  }

  delete(id: number): boolean {
    if (!this.rows.delete(id)) return false;
    this.append({ op: 'del', id });
    return true;
  }

  private append(line: LogLine<T>): void {
    appendFileSync(this.file, `${JSON.stringify(line)}\n`);
  }

  /** Replays the log; false when there was none. */
  private load(): boolean {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    for (const raw of text.split('\n')) {
      if (!raw.trim()) continue;
      let line: LogLine<T>;
      try {
        line = JSON.parse(raw) as LogLine<T>;
      } catch {
        continue; // torn write
      }
      if (line.op === 'put') {
        this.rows.set(line.rec.id, line.rec);
        this.nextId = Math.max(this.nextId, line.rec.id + 1);
      } else if (line.op === 'del') {
        this.rows.delete(line.id);
      } else {
        this.nextId = Math.max(this.nextId, line.next);
      }
    }
    return true;
  }

  private compact(): void {
    const lines: Array<LogLine<T>> = [{ op: 'seq', next: this.nextId }];
    for (const rec of [...this.rows.values()].sort((a, b) => a.id - b.id)) {
      lines.push({ op: 'put', rec });
    }
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, lines.map(l => `${JSON.stringify(l)}\n`).join(''));
    renameSync(tmp, this.file);
  }
}
