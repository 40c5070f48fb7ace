// Where a held reply's bytes go: two V8 heap snapshots (from `npm run bench:held -- --snapshot=DIR`)
// compared by constructor / closure name, self sizes, divided by the replies between them
// (DevTools' "Comparison" view, as a table).
// Run: node --import tsx bench/heapdiff.ts <before.heapsnapshot> <after.heapsnapshot> <replies> [top=30]
import { readFileSync } from 'node:fs';
import { fmt, table } from './stats.js';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self bytes and counts per "type name" (objects by constructor, closures by function name). */
function groups(file: string): Map<string, { bytes: number; count: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const width = f.length;
  const [iType, iName, iSize] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    let name = s.strings[s.nodes[i + iName]!] ?? '';
    // Strings, numbers and code are grouped by kind; their text would make every one its own group.
    if (['string', 'concatenated string', 'sliced string', 'number', 'code', 'bigint'].includes(type))
      name = '';
    else if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}${name ? ` ${name}` : ''}`;
    const g = out.get(key) ?? { bytes: 0, count: 0 };
    g.bytes += s.nodes[i + iSize]!;
    g.count++;
    out.set(key, g);
  }
  return out;
}

const [before, after, repliesArg, topArg] = process.argv.slice(2);
if (!before || !after || !repliesArg) {
  console.error('usage: heapdiff.ts <before> <after> <replies> [top]');
  process.exit(2);
}
const replies = Number(repliesArg);
const a = groups(before);
const b = groups(after);
const rows = [...new Set([...a.keys(), ...b.keys()])]
  .map((k) => {
    const x = a.get(k) ?? { bytes: 0, count: 0 };
    const y = b.get(k) ?? { bytes: 0, count: 0 };
    return { k, bytes: y.bytes - x.bytes, count: y.count - x.count };
  })
  .sort((p, q) => q.bytes - p.bytes);
const total = rows.reduce((n, r) => n + r.bytes, 0);
console.log(`heap growth: ${fmt(total / 1024 / 1024, 1)} MB, ${fmt(total / replies, 0)} B per reply`);
console.log(
  table(
    ['type name', 'B / reply', 'objects / reply', 'share'],
    rows
      .slice(0, Number(topArg ?? 30))
      .map((r) => [
        r.k,
        fmt(r.bytes / replies, 0),
        fmt(r.count / replies, 1),
        `${fmt((100 * r.bytes) / total, 1)} %`,
      ]),
  ),
);
