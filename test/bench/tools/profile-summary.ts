/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by file, and
 * the total time under chosen functions (inclusive).
 *   node test/bench/tools/profile-summary.ts FILE.cpuprofile [top=25] [inclusive=fnA,fnB]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topText, inclusiveText] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: profile-summary.ts FILE.cpuprofile [top] [fnA,fnB]\n');
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const top = Number(topText ?? 25);
const byId = new Map(p.nodes.map(n => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>();
p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const short = (url: string): string =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, 'nm:')
    .replace(/.*\/work\/main\//, '');
const label = (n: Node): string =>
  `${n.callFrame.functionName || '(anonymous)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

const fnSelf = new Map<string, number>();
const fileSelf = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  fnSelf.set(label(n), (fnSelf.get(label(n)) ?? 0) + us);
  const f = short(n.callFrame.url) || `(${n.callFrame.functionName})`;
  fileSelf.set(f, (fileSelf.get(f) ?? 0) + us);
}
const pct = (us: number): string => `${((100 * us) / total).toFixed(1)}%`.padStart(6);
const ms = (us: number): string => `${(us / 1000).toFixed(0)} ms`.padStart(9);
process.stdout.write(
  `profile ${file}: ${(total / 1000).toFixed(0)} ms sampled, wall ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms\n\nself time by function:\n`,
);
for (const [k, v] of [...fnSelf].sort((a, b) => b[1] - a[1]).slice(0, top))
  process.stdout.write(`${ms(v)} ${pct(v)}  ${k}\n`);
process.stdout.write('\nself time by file:\n');
for (const [k, v] of [...fileSelf].sort((a, b) => b[1] - a[1]).slice(0, top))
  process.stdout.write(`${ms(v)} ${pct(v)}  ${k}\n`);

if (inclusiveText) {
  process.stdout.write('\ninclusive time:\n');
  for (const name of inclusiveText.split(',')) {
    let us = 0;
    for (const [id, t] of self) {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        if (byId.get(cur)!.callFrame.functionName === name) {
          us += t;
          break;
        }
      }
    }
    process.stdout.write(`${ms(us)} ${pct(us)}  ${name}\n`);
  }
}
