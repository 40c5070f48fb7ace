// Where our server's CPU goes during streamed turns, next to the floor's: both under --cpu-prof, same load.
// Run alone: npm run build && node --import tsx bench/profile.ts [turns=3000] [concurrency=16]
// BENCH_PROFILE_REDIS=1: both on the production path (shared Redis under a bench prefix; the floor does its Redis work).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runLoad } from './client.js';
import { createBenchDb } from './pgadmin.js';
import { type Child, cpuSeconds } from './procs.js';
import { fmt, table } from './stats.js';
import { ROOT, recordTurn, startFloor, startOurs, TURN_BODY } from './targets.js';

interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }>;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  location: string;
  /** CPU ms per turn, estimated as the share of busy samples × measured CPU per turn. */
  msPerTurn: number;
}

export interface ServerProfile {
  cpuMsPerTurn: number;
  /** Self time by area: our src/, each package, Node internals, GC. */
  areas: Array<{ area: string; msPerTurn: number }>;
  /** Heaviest functions by self time, anywhere. */
  top: Row[];
  /** Our own functions by inclusive time (everything they call, counted once per stack). */
  srcInclusive: Row[];
  /** CPU by phase of a turn (see `phaseOf`), self time of every sample attributed once. */
  phases: Array<{ phase: string; msPerTurn: number }>;
}

// A turn's phases, by the innermost of our files on a sample's stack. Work with none of our frames
// on its stack (a driver's socket write after an await, the HTTP parser, GC) goes by library.
const PHASE_BY_FILE: Array<[RegExp, string]> = [
  [/src\/modules\/chat\/admission|src\/plugins\/rate-limit/, 'admission (rate limit + slot)'],
  [/src\/modules\/chat\/chat\.repo/, 'insert (the turn statement)'],
  [
    /src\/modules\/(agents|llm|query|memory)\/|src\/modules\/generation\/generation\./,
    'pipeline (agent, chunks)',
  ],
  [
    /src\/modules\/generation\/(generation\.repo|writer|sweeper)|src\/lib\/async/,
    'finalize (final write, checkpoints)',
  ],
  [
    /src\/plugins\/sse|src\/modules\/chat\/encoders|src\/modules\/generation\//,
    'stream (log, subscribe, encode, SSE)',
  ],
  [/src\/modules\/metrics/, 'metrics'],
  [/src\//, 'request (route, auth, validation, turn service)'],
];
const PHASE_BY_LIBRARY: Array<[RegExp, string]> = [
  [/node_modules\/(pg|pg-pool|pg-protocol|drizzle-orm)\//, 'postgres driver (after an await)'],
  [/node_modules\/(ioredis|redis-parser)\//, 'redis driver (after an await)'],
  [
    /node_modules\/(fastify|find-my-way|avvio|light-my-request|@fastify)|node:_http|_http_/,
    'http (fastify, node:http)',
  ],
  [/bench\/floor/, 'floor handler'],
];

function phaseRules(url: string, fn: string): { src?: string; lib?: string } {
  // Shared helpers (the prepared-statement runner) take the phase of whoever called them.
  if (OURS.test(url))
    return /src\/db\//.test(url) ? {} : { src: PHASE_BY_FILE.find(([re]) => re.test(url))?.[1] };
  if (fn === '(garbage collector)') return { lib: 'garbage collector' };
  return { lib: PHASE_BY_LIBRARY.find(([re]) => re.test(url))?.[1] };
}

export interface ProfileSummary {
  concurrency: number;
  turns: number;
  ours: ServerProfile;
  floor: ServerProfile;
}

// Compiled app files (dist/src/… or any build dir's src/…), never a package's own src/.
const OURS = /^file:\/\/(?!.*node_modules).*\/(src\/.*)\.js$/;

function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native: syscalls, encoding)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (OURS.test(url)) return 'src/ (ours)';
  if (url.endsWith('/bench/floor.ts')) return 'bench/floor.ts';
  if (url.startsWith('node:')) return 'node: internals';
  return url;
}

function locationOf(url: string, line: number): string {
  const src = OURS.exec(url);
  if (src) return `${src[1]}.ts (js:${line + 1})`;
  const pkg = /node_modules\/(.*)$/.exec(url);
  return `${pkg ? pkg[1] : url.replace(/^file:\/\/.*\/bench\//, 'bench/') || '(native)'}:${line + 1}`;
}

/** Summarises the samples of the last `windowMs` of a profile (the measured load, not the boot). */
export function summariseProfile(
  file: string,
  windowMs: number,
  cpuMsPerTurn: number,
  limit = 12,
): ServerProfile {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const hits = new Map<number, number>();
  let t = p.endTime;
  const from = p.endTime - windowMs * 1000;
  for (let i = p.samples.length - 1; i >= 0 && t >= from; i--) {
    hits.set(p.samples[i]!, (hits.get(p.samples[i]!) ?? 0) + 1);
    t -= p.timeDeltas[i]!;
  }
  const idle = (id: number) => byId.get(id)!.callFrame.functionName === '(idle)';
  const busy = [...hits.entries()].reduce((s, [id, h]) => s + (idle(id) ? 0 : h), 0);
  const ms = (h: number) => (h / Math.max(1, busy)) * cpuMsPerTurn;
  const keyOf = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || '(anonymous)'}\t${f.url}\t${f.lineNumber}`;
  };

  const areas = new Map<string, number>();
  const self = new Map<string, number>();
  for (const [id, h] of hits) {
    if (idle(id)) continue;
    const f = byId.get(id)!.callFrame;
    const area = areaOf(f.url, f.functionName);
    areas.set(area, (areas.get(area) ?? 0) + h);
    self.set(keyOf(id), (self.get(keyOf(id)) ?? 0) + h);
  }

  // Inclusive time of our own functions: subtree totals, a frame counted once per stack.
  const total = new Map<number, number>();
  const subtree = (id: number): number => {
    let sum = hits.get(id) ?? 0;
    for (const c of byId.get(id)!.children ?? []) sum += subtree(c);
    total.set(id, sum);
    return sum;
  };
  const rootId = p.nodes[0]!.id;
  subtree(rootId);
  const inclusive = new Map<string, number>();
  const walk = (id: number, onStack: Set<string>) => {
    const k = keyOf(id);
    const fresh = OURS.test(byId.get(id)!.callFrame.url) && !onStack.has(k);
    if (fresh) {
      inclusive.set(k, (inclusive.get(k) ?? 0) + total.get(id)!);
      onStack.add(k);
    }
    for (const c of byId.get(id)!.children ?? []) walk(c, onStack);
    if (fresh) onStack.delete(k);
  };
  walk(rootId, new Set());

  // Phases: the innermost of our frames decides; else the innermost known library; else "other".
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const phaseMemo = new Map<number, { src?: string; lib?: string }>();
  const phaseAt = (id: number): { src?: string; lib?: string } => {
    const known = phaseMemo.get(id);
    if (known) return known;
    const f = byId.get(id)!.callFrame;
    const own = phaseRules(f.url, f.functionName);
    const up = parent.has(id) ? phaseAt(parent.get(id)!) : {};
    const found = { src: own.src ?? up.src, lib: own.lib ?? up.lib };
    phaseMemo.set(id, found);
    return found;
  };
  const phases = new Map<string, number>();
  for (const [id, h] of hits) {
    if (idle(id)) continue;
    const at = phaseAt(id);
    const phase = at.src ?? at.lib ?? 'other (node, native)';
    phases.set(phase, (phases.get(phase) ?? 0) + h);
  }

  const rows = (m: Map<string, number>): Row[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([k, h]) => {
        const [name, url, line] = k.split('\t');
        return { name: name!, location: locationOf(url!, Number(line)), msPerTurn: ms(h) };
      });
  return {
    cpuMsPerTurn,
    areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([area, h]) => ({ area, msPerTurn: ms(h) })),
    top: rows(self),
    srcInclusive: rows(inclusive),
    phases: [...phases.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([phase, h]) => ({ phase, msPerTurn: ms(h) })),
  };
}

async function profileLoad(
  child: Child,
  dir: string,
  turns: number,
  concurrency: number,
): Promise<ServerProfile> {
  try {
    await runLoad({ base: child.base, body: TURN_BODY, concurrency, turns: Math.round(turns / 5) });
    const cpu0 = cpuSeconds(child.pid);
    const t0 = Date.now();
    const r = await runLoad({ base: child.base, body: TURN_BODY, concurrency, turns });
    const cpuMsPerTurn = ((cpuSeconds(child.pid) - cpu0) * 1000) / Math.max(1, r.ok);
    const windowMs = Date.now() - t0;
    // The profile is written when the process exits normally (both servers exit 0 on SIGTERM).
    await child.stop();
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`${child.name} wrote no .cpuprofile`);
    return summariseProfile(join(dir, file), windowMs, cpuMsPerTurn);
  } finally {
    await child.stop();
  }
}

export async function profileOurs(opts: {
  serverJs: string;
  turns?: number;
  concurrency?: number;
}): Promise<ProfileSummary> {
  const turns = opts.turns ?? 3000;
  const concurrency = opts.concurrency ?? 16;
  const dirs = [mkdtempSync(join(tmpdir(), 'bench-prof-')), mkdtempSync(join(tmpdir(), 'bench-prof-'))];
  const dbs = [await createBenchDb('profile'), await createBenchDb('profilefloor')];
  let eventsFile: string | undefined;
  try {
    const prof = (dir: string) => ['--cpu-prof', `--cpu-prof-dir=${dir}`];
    const redisPrefix = process.env.BENCH_PROFILE_REDIS === '1' ? `bench:prof:${process.pid}:` : undefined;
    const oursChild = await startOurs({
      db: dbs[0]!,
      serverJs: opts.serverJs,
      nodeFlags: prof(dirs[0]!),
      redisPrefix,
    });
    eventsFile = (await recordTurn(oursChild.base)).file;
    const ours = await profileLoad(oursChild, dirs[0]!, turns, concurrency);
    const floorChild = await startFloor(dbs[1]!, eventsFile, {
      nodeFlags: prof(dirs[1]!),
      redisPrefix: redisPrefix && `${redisPrefix}floor:`,
    });
    const floor = await profileLoad(floorChild, dirs[1]!, turns, concurrency);
    return { concurrency, turns, ours, floor };
  } finally {
    await Promise.all(dbs.map((d) => d.drop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    if (eventsFile) rmSync(eventsFile, { force: true });
  }
}

/** Plain-text report: areas side by side, then our heaviest functions. */
export function renderProfile(p: ProfileSummary, render = table): string {
  const areaNames = [...new Set([...p.ours.areas, ...p.floor.areas].map((a) => a.area))];
  const of = (s: ServerProfile, area: string) => s.areas.find((a) => a.area === area)?.msPerTurn ?? 0;
  const areaRows = areaNames
    .map((a) => ({ a, ours: of(p.ours, a), floor: of(p.floor, a) }))
    .sort((x, y) => y.ours + y.floor - (x.ours + x.floor))
    .slice(0, 14)
    .map((r) => [r.a, fmt(r.ours, 3), fmt(r.floor, 3), fmt(r.ours - r.floor, 3)]);
  const fnRows = (rows: Row[]) => rows.map((f) => [f.name, f.location, fmt(f.msPerTurn, 3)]);
  const phaseNames = [...new Set([...p.ours.phases, ...p.floor.phases].map((x) => x.phase))];
  const phaseOf = (sp: ServerProfile, name: string) =>
    sp.phases.find((x) => x.phase === name)?.msPerTurn ?? 0;
  const phaseRows = phaseNames.map((n) => [n, fmt(phaseOf(p.ours, n), 3), fmt(phaseOf(p.floor, n), 3)]);
  return [
    `CPU profiles at c=${p.concurrency}, ${p.turns} turns each: ours ${fmt(p.ours.cpuMsPerTurn, 2)} ms/turn, ` +
      `floor ${fmt(p.floor.cpuMsPerTurn, 2)} ms/turn (profiler on; split by share of busy samples)`,
    render(
      ['area (self time)', 'ours ms/turn', 'floor ms/turn', 'difference'],
      [
        ...areaRows,
        [
          'total',
          fmt(p.ours.cpuMsPerTurn, 3),
          fmt(p.floor.cpuMsPerTurn, 3),
          fmt(p.ours.cpuMsPerTurn - p.floor.cpuMsPerTurn, 3),
        ],
      ],
    ),
    '',
    render(['phase (innermost of our frames; else library)', 'ours ms/turn', 'floor ms/turn'], phaseRows),
    '',
    render(['ours: heaviest functions (self)', 'location', 'ms/turn'], fnRows(p.ours.top)),
    '',
    render(['ours: src/ functions (inclusive)', 'location', 'ms/turn'], fnRows(p.ours.srcInclusive)),
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const serverJs = process.env.BENCH_SERVER_JS ?? join(ROOT, 'dist/src/server.js');
  const p = await profileOurs({
    serverJs,
    turns: Number(process.argv[2] ?? 3000),
    concurrency: Number(process.argv[3] ?? 16),
  });
  console.log(renderProfile(p));
}
