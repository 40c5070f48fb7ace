// `npm run bench`: streamed chat turns against the built server and a framework-free floor, then query latency.
// The AI SDK route (POST /api/v1/chat/ui) runs as its own target, `ours-ui`, on the same build.
// Knobs (env): BENCH_REDIS=1|0, BENCH_UI=0 (skip the AI SDK target), BENCH_REPEATS=3, BENCH_TURNS_16=3000, BENCH_TURNS_64=6000, BENCH_STARTUP=<turns at c=16 a fresh server runs first, reported apart> (default 3000; 0: none), BENCH_WARMUP=<turns per phase> (default a tenth of the phase, at least 100), BENCH_QUERIES=0,
// BENCH_PROFILE=1 (profile our server after the phases), BENCH_SERVER_JS=<path> (default dist/src/server.js),
// BENCH_FLOOR_NAMED=1 (the floor uses named prepared statements too, as our server does).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runLoad } from './client.js';
import { type BenchDb, createBenchDb, type DbCounters, dropStaleBenchDbs } from './pgadmin.js';
import { type Child, cpuSeconds, machineJiffies } from './procs.js';
import { profileOurs } from './profile.js';
import { runQueries } from './queries.js';
import { median, percentile, sleep } from './stats.js';
import { printSummary, type Sample, type StartupSample, type TargetReport } from './summary.js';
import {
  checkTurn,
  dropRedisPrefix,
  NATIVE_ROUTE,
  productionNodeFlags,
  REDIS_URL,
  ROOT,
  recordTurn,
  redisAnswers,
  startFloor,
  startOurs,
  type TurnRoute,
  UI_ROUTE,
} from './targets.js';

const envInt = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
};

const serverJs = process.env.BENCH_SERVER_JS ?? join(ROOT, 'dist/src/server.js');
const repeats = envInt('BENCH_REPEATS', 3);
const phases = [
  { concurrency: 16, turns: envInt('BENCH_TURNS_16', 3000) },
  { concurrency: 64, turns: envInt('BENCH_TURNS_64', 6000) },
];
// A fresh server's first few thousand turns pay V8's tier-up: TurboFan compiles the hot paths on
// its helper threads, and the CPU of those threads counts (bench/RESULTS.md, sixth and seventh
// sessions). A replica serving for hours paid it long ago, so every server first runs a start-up
// load (BENCH_STARTUP turns at c=16, default 3000; 0 skips it) whose CPU per turn is reported on
// its own ("start-up" rows), then each phase's warm-up and timed turns: the phases measure the
// steady state production runs in, the start-up rows what a fresh process pays on top.
const startupTurns = process.env.BENCH_STARTUP === '0' ? 0 : envInt('BENCH_STARTUP', 3000);
// Per phase: a warm-up at the phase's concurrency so JIT, pools and sockets are hot before timing.
// BENCH_WARMUP sets it (turns, every target alike): each repeat starts fresh servers, so a short
// warm-up bills V8's tier-up compilation to the measured turns; a long-running server has none.
const warmupOf = (turns: number) =>
  process.env.BENCH_WARMUP ? envInt('BENCH_WARMUP', 0) : Math.max(100, Math.round(turns / 10));
// No phase may run away on a slow or broken server.
const PHASE_MAX_MS = 90_000;

const sumCpu = (pids: number[]) => pids.reduce((n, pid) => n + cpuSeconds(pid), 0);

const CHAT_TABLES = new Set(['public.chat_sessions', 'public.chat_messages', 'public.generation_usage']);

/** Rows on the turn's own tables per turn, and whatever else (background jobs) wrote meanwhile. */
function tableWrites(before: DbCounters, after: DbCounters, turns: number) {
  let chatInserted = 0;
  let chatUpdated = 0;
  const other: string[] = [];
  for (const [table, a] of Object.entries(after.tables)) {
    const b = before.tables[table] ?? { ins: 0, upd: 0, del: 0 };
    const d = { ins: a.ins - b.ins, upd: a.upd - b.upd, del: a.del - b.del };
    if (CHAT_TABLES.has(table)) {
      chatInserted += d.ins;
      chatUpdated += d.upd;
    } else if (d.ins || d.upd || d.del) {
      other.push(`${table} +${d.ins}/~${d.upd}/-${d.del}`);
    }
  }
  return { chatInserted: chatInserted / turns, chatUpdated: chatUpdated / turns, other };
}

interface Target {
  key: 'floor' | 'ours' | 'ours-ui' | 'floor+redis' | 'ours+redis';
  /** The route its turns go to (the floor serves the native one). */
  route: TurnRoute;
  db: BenchDb;
  start(db: BenchDb): Promise<Child>;
  child?: Child;
  turnsSent: number;
  samples: Map<number, Sample[]>;
  startup: StartupSample[];
}

/** Where a target's turns go: its server, route, body and what a whole answer looks like. */
const loadOf = (t: Target) => ({
  base: t.child!.base,
  path: t.route.path,
  body: t.route.body,
  isComplete: t.route.isComplete,
});

/** The start-up load of a fresh server: its CPU per turn, tier-up compilation included. */
async function runStartup(t: Target): Promise<StartupSample> {
  const child = t.child!;
  const cpu0 = cpuSeconds(child.pid);
  const r = await runLoad({ ...loadOf(t), concurrency: 16, turns: startupTurns, maxMs: PHASE_MAX_MS });
  const cpu1 = cpuSeconds(child.pid);
  t.turnsSent += r.turns;
  return { turns: r.ok, cpuMsPerTurn: ((cpu1 - cpu0) * 1000) / Math.max(1, r.ok), errors: r.errors };
}

async function runPhase(t: Target, concurrency: number, turns: number): Promise<Sample> {
  const child = t.child!;
  const load = loadOf(t);
  const warm = await runLoad({
    ...load,
    concurrency,
    turns: warmupOf(turns),
    maxMs: PHASE_MAX_MS,
  });
  // The database's share: CPU of the backends serving this server's pool (they live across a phase).
  const pids0 = await t.db.backendPids();
  const pg0 = sumCpu(pids0);
  const box0 = machineJiffies();
  const cpu0 = cpuSeconds(child.pid);
  const r = await runLoad({ ...load, concurrency, turns, maxMs: PHASE_MAX_MS });
  const cpu1 = cpuSeconds(child.pid);
  const box1 = machineJiffies();
  const pids1 = [...new Set([...pids0, ...(await t.db.backendPids())])];
  const pg1 = sumCpu(pids1);
  t.turnsSent += warm.turns + r.turns;
  const okTurns = Math.max(1, r.ok);
  return {
    turnsPerSec: (r.ok / r.wallMs) * 1000,
    firstP50: percentile(r.firstEventMs, 50),
    firstP99: percentile(r.firstEventMs, 99),
    totalP50: percentile(r.totalMs, 50),
    cpuMsPerTurn: ((cpu1 - cpu0) * 1000) / okTurns,
    pgCpuMsPerTurn: ((pg1 - pg0) * 1000) / okTurns,
    boxBusyPct: ((box1.busy - box0.busy) / Math.max(1, box1.total - box0.total)) * 100,
    clientCpuPct: (r.clientCpuMs / r.wallMs) * 100,
    load1: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
    ok: r.ok,
    errors: r.errors + warm.errors,
    errorSamples: [...warm.errorSamples, ...r.errorSamples].slice(0, 3),
    events: [r.eventsMin, r.eventsMax],
  };
}

async function main() {
  const t0 = performance.now();
  const stale = await dropStaleBenchDbs();
  if (stale.length) console.log(`dropped ${stale.length} database(s) left by an earlier run`);
  const wantRedis =
    process.env.BENCH_REDIS === '1' || (process.env.BENCH_REDIS !== '0' && (await redisAnswers()));
  const redisPrefix = `bench:${process.pid}:${Date.now().toString(36)}:`;

  const targets: Target[] = [];
  const make = async (
    key: Target['key'],
    label: string,
    start: Target['start'],
    route = NATIVE_ROUTE,
  ): Promise<Target> => {
    const t: Target = {
      key,
      route,
      db: await createBenchDb(label),
      start,
      turnsSent: 0,
      samples: new Map(),
      startup: [],
    };
    targets.push(t);
    return t;
  };
  let eventsFile: string | undefined;
  const cleanup = async () => {
    await Promise.allSettled(targets.map((t) => t.child?.stop()));
    await Promise.allSettled(targets.map((t) => t.db.drop()));
    if (eventsFile) rmSync(eventsFile, { force: true });
    if (wantRedis) await dropRedisPrefix(redisPrefix).catch(() => 0);
  };
  process.once('SIGINT', () => {
    console.log('\ninterrupted: stopping servers and dropping databases');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    const ours = await make('ours', 'ours', (db) => startOurs({ db, serverJs }));
    await make('floor', 'floor', (db) => startFloor(db, eventsFile!, {}));
    if (process.env.BENCH_UI !== '0')
      await make('ours-ui', 'ui', (db) => startOurs({ db, serverJs }), UI_ROUTE);
    if (wantRedis) {
      // The floor with Redis does what a correct turn needs there (bench/floor.ts), no less.
      await make('floor+redis', 'floor', (db) =>
        startFloor(db, eventsFile!, { redisPrefix: `${redisPrefix}floor:` }),
      );
      await make('ours+redis', 'redis', (db) => startOurs({ db, serverJs, redisPrefix }));
    }
    const before = new Map<Target, DbCounters>();
    for (const t of targets) before.set(t, await t.db.counters());

    const probeServer = await ours.start(ours.db);
    const probe = await recordTurn(probeServer.base).finally(() => probeServer.stop());
    ours.turnsSent++;
    eventsFile = probe.file;
    console.log(
      `recorded turn: ${probe.events} events, ${probe.chars} chars of reply; targets: ${targets.map((t) => t.key).join(', ')}` +
        (wantRedis ? ` (Redis ${REDIS_URL}, prefix ${redisPrefix})` : ' (no Redis)') +
        `; Node ${process.version} (the servers run the bench's node; ours with ${productionNodeFlags().join(' ') || 'no flags'})`,
    );

    // One server at a time (20 pooled connections each; the shared Postgres allows 100), in an
    // order rotated per repeat so a noisy neighbour hits every target alike rather than one.
    for (let rep = 0; rep < repeats; rep++) {
      for (const t of targets.map((_, i) => targets[(i + rep) % targets.length]!)) {
        // Migrations may land while a long run is under way; the server refuses to boot behind.
        await t.db.migrate();
        t.child = await t.start(t.db);
        try {
          await checkTurn(t.child.base, t.route);
          t.turnsSent++;
          if (startupTurns > 0) {
            const s = await runStartup(t);
            t.startup.push(s);
            console.log(
              `  rep ${rep + 1} start-up ${t.key.padEnd(10)} ${s.turns} turns at c=16, cpu ${s.cpuMsPerTurn.toFixed(2)} ms/turn` +
                (s.errors ? `  ERRORS ${s.errors}` : ''),
            );
          }
          for (const { concurrency, turns } of phases) {
            const s = await runPhase(t, concurrency, turns);
            const list = t.samples.get(concurrency) ?? [];
            list.push(s);
            t.samples.set(concurrency, list);
            console.log(
              `  rep ${rep + 1} c=${concurrency} ${t.key.padEnd(10)} ${s.turnsPerSec.toFixed(0).padStart(5)} turns/s  ` +
                `first p50 ${s.firstP50.toFixed(1)} ms p99 ${s.firstP99.toFixed(1)} ms  ` +
                `cpu ${s.cpuMsPerTurn.toFixed(2)} ms/turn (pg ${s.pgCpuMsPerTurn.toFixed(2)})  box ${s.boxBusyPct.toFixed(0)}%` +
                (s.errors ? `  ERRORS ${s.errors}: ${s.errorSamples.join(' | ')}` : ''),
            );
          }
        } finally {
          await t.child.stop();
          t.child = undefined;
        }
      }
    }

    // The servers are stopped: their backends exited and flushed Postgres' per-database counters.
    await sleep(300);
    const reports: TargetReport[] = [];
    const rank = { floor: 0, ours: 1, 'ours-ui': 2, 'floor+redis': 3, 'ours+redis': 4 };
    for (const t of [...targets].sort((a, b) => rank[a.key] - rank[b.key])) {
      const after = await t.db.counters();
      const b = before.get(t)!;
      reports.push({
        key: t.key,
        turnsSent: t.turnsSent,
        perTurn: {
          commits: (after.xact_commit - b.xact_commit) / t.turnsSent,
          rollbacks: (after.xact_rollback - b.xact_rollback) / t.turnsSent,
          inserted: (after.tup_inserted - b.tup_inserted) / t.turnsSent,
          updated: (after.tup_updated - b.tup_updated) / t.turnsSent,
          ...tableWrites(b, after, t.turnsSent),
        },
        startup: t.startup,
        phases: [...t.samples.entries()].map(([concurrency, list]) => ({
          concurrency,
          runs: list,
          median: {
            turnsPerSec: median(list.map((s) => s.turnsPerSec)),
            firstP50: median(list.map((s) => s.firstP50)),
            firstP99: median(list.map((s) => s.firstP99)),
            totalP50: median(list.map((s) => s.totalP50)),
            cpuMsPerTurn: median(list.map((s) => s.cpuMsPerTurn)),
            pgCpuMsPerTurn: median(list.map((s) => s.pgCpuMsPerTurn)),
            boxBusyPct: median(list.map((s) => s.boxBusyPct)),
            clientCpuPct: median(list.map((s) => s.clientCpuPct)),
            load1: median(list.map((s) => s.load1)),
          },
          errors: list.reduce((n, s) => n + s.errors, 0),
          events: list[0]?.events ?? [0, 0],
        })),
      });
    }

    const profile = process.env.BENCH_PROFILE === '1' ? await profileOurs({ serverJs }) : undefined;
    const queries = process.env.BENCH_QUERIES === '0' ? undefined : await runQueries({ serverJs });
    printSummary({
      reports,
      queries,
      profile,
      repeats,
      elapsedS: (performance.now() - t0) / 1000,
      markdown: process.argv.includes('--md'),
    });
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
