// The end-of-run report: medians, ratios to the floor with the goals, writes per turn, queries, profile.
import { type ProfileSummary, renderProfile } from './profile.js';
import type { QueryResults } from './queries.js';
import { fmt, markdownTable, median, table } from './stats.js';

export interface Sample {
  turnsPerSec: number;
  firstP50: number;
  firstP99: number;
  totalP50: number;
  cpuMsPerTurn: number;
  /** CPU of the Postgres backends serving this server, per turn. */
  pgCpuMsPerTurn: number;
  /** How busy the whole (shared) machine was during the phase. */
  boxBusyPct: number;
  clientCpuPct: number;
  /** The machine's 1-minute load average at the end of the phase. */
  load1: number;
  ok: number;
  errors: number;
  errorSamples: string[];
  /** Events per turn seen (min, max). */
  events: [number, number];
}

/** A fresh server's start-up load (c=16): what it costs before V8 has compiled the hot paths. */
export interface StartupSample {
  turns: number;
  cpuMsPerTurn: number;
  errors: number;
}

export interface PhaseReport {
  concurrency: number;
  runs: Sample[];
  median: Omit<Sample, 'ok' | 'errors' | 'errorSamples' | 'events'>;
  errors: number;
  events: [number, number];
}

export interface TargetReport {
  key: string;
  turnsSent: number;
  perTurn: {
    commits: number;
    rollbacks: number;
    inserted: number;
    updated: number;
    /** Rows on chat_sessions, chat_messages and generation_usage only. */
    chatInserted: number;
    chatUpdated: number;
    /** Other tables written during the run (background jobs), as "table +ins/~upd/-del" totals. */
    other: string[];
  };
  /** One per repeat, in order (empty with BENCH_STARTUP=0). */
  startup: StartupSample[];
  phases: PhaseReport[];
}

export interface SummaryInput {
  reports: TargetReport[];
  queries?: QueryResults;
  profile?: ProfileSummary;
  repeats: number;
  elapsedS: number;
  markdown: boolean;
}

// Issue 3's goals, relative to the floor measured in the same run.
export const GOALS = { turnsPerSec: 0.9, firstP50: 1.2, queryP50Ms: 5 };
// Issue 14's goal: the AI SDK route's turns/s within 5% of the native route's, in the same run.
export const UI_GOAL = 0.95;

/** `ours-ui` ÷ `ours` per concurrency: the cost of the second protocol on the same turn. */
export function uiRatios(reports: TargetReport[]): string[] {
  const ours = reports.find((r) => r.key === 'ours');
  const ui = reports.find((r) => r.key === 'ours-ui');
  if (!ours || !ui) return [];
  return ui.phases.flatMap((p) => {
    const native = ours.phases.find((x) => x.concurrency === p.concurrency)?.median;
    if (!native) return [];
    const tps = p.median.turnsPerSec / native.turnsPerSec;
    const first = p.median.firstP50 / native.firstP50;
    return [
      `  c=${p.concurrency}: turns/s ${fmt(tps, 3)}× ${mark(tps >= UI_GOAL)}, first-event p50 ${fmt(first, 2)}×, CPU/turn ${fmt(p.median.cpuMsPerTurn / native.cpuMsPerTurn, 2)}×`,
    ];
  });
}

const mark = (ok: boolean) => (ok ? 'ok' : 'MISS');

export function turnRows(reports: TargetReport[]): { header: string[]; rows: string[][] } {
  // Each server is compared with the floor doing the same kind of work: with Redis, the Redis floor.
  const floorOf = (key: string) =>
    reports.find(
      (r) =>
        r.key ===
        (key.endsWith('+redis') && reports.some((x) => x.key === 'floor+redis') ? 'floor+redis' : 'floor'),
    );
  const header = [
    'target',
    'c',
    'turns/s',
    '× floor',
    'first p50 ms',
    '× floor',
    'first p99 ms',
    '× floor',
    'CPU ms/turn',
    '× floor',
    'PG CPU ms/turn',
    'per-run × floor: turns/s, first p50, CPU (min–max)',
    'load avg',
    'turn p50 ms',
    'box busy',
    'client CPU',
    'events',
    'errors',
  ];
  const rows: string[][] = [];
  for (const c of [...new Set(reports.flatMap((r) => r.phases.map((p) => p.concurrency)))].sort(
    (a, b) => a - b,
  )) {
    for (const r of reports) {
      const basePhase = floorOf(r.key)?.phases.find((p) => p.concurrency === c);
      const base = basePhase?.median;
      const baseRuns = basePhase?.runs;
      const p = r.phases.find((x) => x.concurrency === c);
      if (!p) continue;
      const m = p.median;
      const isFloor = r.key.startsWith('floor');
      const tps = base ? m.turnsPerSec / base.turnsPerSec : Number.NaN;
      const p50 = base ? m.firstP50 / base.firstP50 : Number.NaN;
      rows.push([
        r.key,
        String(c),
        fmt(m.turnsPerSec, 0),
        isFloor ? '1.00' : `${fmt(tps, 2)} ${mark(tps >= GOALS.turnsPerSec)}`,
        fmt(m.firstP50, 2),
        isFloor ? '1.00' : `${fmt(p50, 2)} ${mark(p50 <= GOALS.firstP50)}`,
        fmt(m.firstP99, 1),
        base ? fmt(m.firstP99 / base.firstP99, 2) : '—',
        fmt(m.cpuMsPerTurn, 2),
        base ? fmt(m.cpuMsPerTurn / base.cpuMsPerTurn, 2) : '—',
        fmt(m.pgCpuMsPerTurn, 2),
        isFloor || !baseRuns ? '—' : spread(p.runs, baseRuns),
        fmt(m.load1, 1),
        fmt(m.totalP50, 1),
        `${fmt(m.boxBusyPct, 0)}%`,
        `${fmt(m.clientCpuPct, 0)}%`,
        p.events[0] === p.events[1] ? String(p.events[0]) : `${p.events[0]}–${p.events[1]}`,
        String(p.errors),
      ]);
    }
  }
  return { header, rows };
}

/** Each target's start-up CPU per turn against its floor's (the Redis floor for +redis targets). */
export function startupRows(reports: TargetReport[]): { header: string[]; rows: string[][] } {
  const header = ['target', 'turns', 'CPU ms/turn', '× floor', 'per-repeat × floor (min–max)', 'errors'];
  const floorOf = (key: string) =>
    reports.find((r) => r.key === (key.endsWith('+redis') ? 'floor+redis' : 'floor'))?.startup ?? [];
  const rows: string[][] = [];
  for (const r of reports) {
    if (!r.startup.length) continue;
    const floor = floorOf(r.key);
    const cpu = median(r.startup.map((x) => x.cpuMsPerTurn));
    const floorCpu = floor.length ? median(floor.map((x) => x.cpuMsPerTurn)) : Number.NaN;
    const n = Math.min(r.startup.length, floor.length);
    const per = Array.from({ length: n }, (_, i) => r.startup[i]!.cpuMsPerTurn / floor[i]!.cpuMsPerTurn);
    rows.push([
      r.key,
      String(median(r.startup.map((x) => x.turns))),
      fmt(cpu, 2),
      r.key.startsWith('floor') ? '1.00' : fmt(cpu / floorCpu, 2),
      r.key.startsWith('floor') || !n ? '—' : `${fmt(Math.min(...per), 2)}–${fmt(Math.max(...per), 2)}`,
      String(r.startup.reduce((k, x) => k + x.errors, 0)),
    ]);
  }
  return { header, rows };
}

/** Ratios of the runs made in the same repeat (interleaved), as min–max per figure. */
function spread(runs: Sample[], floorRuns: Sample[]): string {
  const n = Math.min(runs.length, floorRuns.length);
  const range = (f: (s: Sample) => number) => {
    const v = Array.from({ length: n }, (_, i) => f(runs[i]!) / f(floorRuns[i]!));
    return `${fmt(Math.min(...v), 2)}–${fmt(Math.max(...v), 2)}`;
  };
  return [range((s) => s.turnsPerSec), range((s) => s.firstP50), range((s) => s.cpuMsPerTurn)].join(' / ');
}

export function writeRows(reports: TargetReport[]): { header: string[]; rows: string[][] } {
  return {
    header: [
      'target',
      'turns sent',
      'commits/turn',
      'rows ins/turn',
      'rows upd/turn',
      'chat tables ins/turn',
      'chat tables upd/turn',
      'rollbacks/turn',
    ],
    rows: reports.map((r) => [
      r.key,
      String(r.turnsSent),
      fmt(r.perTurn.commits, 3),
      fmt(r.perTurn.inserted, 3),
      fmt(r.perTurn.updated, 3),
      fmt(r.perTurn.chatInserted, 3),
      fmt(r.perTurn.chatUpdated, 3),
      fmt(r.perTurn.rollbacks, 3),
    ]),
  };
}

export function queryRows(q: QueryResults): { header: string[]; rows: string[][] } {
  return {
    header: [
      'route (ours, sequential)',
      'requests',
      'p50 ms',
      'p99 ms',
      'max ms',
      `p50 < ${GOALS.queryP50Ms} ms`,
    ],
    rows: q.routes.map((r) => [
      r.route,
      String(r.requests),
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      fmt(r.max, 1),
      mark(r.p50 < GOALS.queryP50Ms),
    ]),
  };
}

export function printSummary(s: SummaryInput): void {
  const render = s.markdown ? markdownTable : table;
  const out: string[] = [];
  const t = turnRows(s.reports);
  out.push(
    '',
    `Chat turns: POST /api/v1/chat/stream "ajuda", median of ${s.repeats} runs per phase; × floor = ours ÷ floor`,
    `goals: turns/s ≥ ${GOALS.turnsPerSec}× floor, first-event p50 ≤ ${GOALS.firstP50}× floor`,
    render(t.header, t.rows),
  );
  const st = startupRows(s.reports);
  if (st.rows.length) {
    out.push(
      '',
      'Start-up: the first turns of each fresh server (c=16), before the phases above; V8 compiles the hot paths meanwhile. Median of the repeats; × floor per repeat (min–max)',
      render(st.header, st.rows),
    );
  }
  const ui = uiRatios(s.reports);
  if (ui.length) {
    out.push(
      '',
      `AI SDK route (ours-ui: POST /api/v1/chat/ui, the same turn as a UI message stream) ÷ native (ours); goal turns/s ≥ ${UI_GOAL}×`,
      ...ui,
    );
  }
  const w = writeRows(s.reports);
  out.push(
    '',
    'Writes per turn (pg_stat_database deltas of each server’s own database ÷ every turn it served, warm-ups included)',
    render(w.header, w.rows),
  );
  for (const r of s.reports) {
    if (r.perTurn.other.length) out.push(`  ${r.key}: also written (totals): ${r.perTurn.other.join(', ')}`);
  }
  if (s.queries) {
    const q = queryRows(s.queries);
    out.push(
      '',
      `Query latency: 1 session × 100,000 messages, 1 user × 10,000 sessions (seeded in ${fmt(s.queries.seedMs / 1000, 1)} s)`,
      render(q.header, q.rows),
    );
    for (const e of s.queries.explains) {
      out.push(
        '',
        `EXPLAIN (ANALYZE, BUFFERS) — ${e.label}`,
        s.markdown ? `\`\`\`\n${e.plan}\n\`\`\`` : e.plan,
      );
    }
  }
  if (s.profile) out.push('', renderProfile(s.profile, render));
  out.push('', `total ${fmt(s.elapsedS, 0)} s`);
  console.log(out.join('\n'));
}
