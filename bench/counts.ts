// Per-turn work that noise cannot blur: Redis commands and round trips, Postgres statements, CPU µs of each process.
// Run: npm run build && node --import tsx bench/counts.ts [turns=1500] [concurrency=16]
// BENCH_BASE_JS=<dir>/dist/src/server.js adds the same rows for another build (e.g. main before a change);
// BENCH_COUNT_TARGETS=ours+redis,base+redis counts only the targets named.
// Uses a private redis-server on a free port, so the shared one's traffic never mixes in.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runLoad } from './client.js';
import { type BenchDb, createBenchDb } from './pgadmin.js';
import { type Child, cpuSeconds, freePort } from './procs.js';
import { fmt, markdownTable, sleep, table } from './stats.js';
import { checkTurn, ROOT, recordTurn, startFloor, startOurs, TURN_BODY } from './targets.js';

export interface Totals {
  pgQueries: number;
  pgWrites: number;
  redisWrites: number;
  redisCommands: number;
  redisByName: Record<string, number>;
  cpuUs: number;
  /** JS heap bytes allocated since start (garbage included). */
  allocatedBytes: number;
  gc: {
    scavenges: number;
    markCompacts: number;
    survivedBytes: number;
    promotedBytes: number;
    pauseUs: number;
  };
  rss: number;
  mem: NodeJS.MemoryUsage;
  delay: { p50: number; p99: number; max: number };
  /** With `--expose-gc`: memory after a forced full collection, and CPU time read after it. */
  afterGc?: { mem: NodeJS.MemoryUsage; cpuUs: number };
  /** Heap spaces: committed and used MB. */
  spaces?: Record<string, [number, number]>;
}

interface RedisStats {
  commands: number;
  reads: number;
  byName: Record<string, number>;
  cpuS: number;
}

export interface CountRow {
  target: string;
  turns: number;
  serverCpuUs: number;
  allocatedKb: number;
  /** Bytes young-generation collections kept (copied or promoted), per turn. */
  survivedKb: number;
  /** Of it, moved to the old generation (lives until a full collection). */
  promotedKb: number;
  /** Young-generation and full (mark-compact) collections per 1,000 turns. */
  scavengesPer1k: number;
  markCompactsPer1k: number;
  redisCpuUs: number;
  pgCpuUs: number;
  pgStatements: number;
  pgWrites: number;
  redisRoundTrips: number;
  redisClientCommands: number;
  redisServerCommands: number;
  redisServerReads: number;
  byName: string;
}

export async function startPrivateRedis(): Promise<{ url: string; port: number; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // Refused while redis-server is still starting: the catch below retries, nothing to report.
    c.on('error', () => {});
    try {
      await c.connect();
      await c.ping();
      c.disconnect();
      return { url, port, proc };
    } catch {
      c.disconnect();
      await sleep(100);
    }
  }
  proc.kill();
  throw new Error('private redis-server did not start');
}

async function redisStats(client: Redis, pid: number): Promise<RedisStats> {
  const info = await client.info('all');
  const num = (k: string) => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  const byName: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) byName[m[1]!] = Number(m[2]);
  // INFO itself is counted; the caller subtracts its own two calls.
  return {
    commands: num('total_commands_processed'),
    reads: num('total_reads_processed'),
    byName,
    cpuS: cpuSeconds(pid),
  };
}

export async function snapshot(child: Child, file: string): Promise<Totals> {
  const before = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
  process.kill(child.pid, 'SIGUSR2');
  for (let i = 0; i < 100; i++) {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    if (lines.length > before) return JSON.parse(lines.at(-1)!) as Totals;
    await sleep(20);
  }
  throw new Error(`${child.name} wrote no counts`);
}

interface Target {
  name: string;
  redis: boolean;
  start(flags: string[], env: Record<string, string>): Promise<Child>;
}

export async function countTurns(opts: {
  turns: number;
  concurrency: number;
  baseJs?: string;
}): Promise<CountRow[]> {
  const serverJs = join(ROOT, 'dist/src/server.js');
  const hook = join(ROOT, 'bench/count-hook.ts');
  const r = await startPrivateRedis();
  const admin = new Redis(r.url);
  const db: BenchDb = await createBenchDb('counts');
  const rows: CountRow[] = [];
  let specFile: string | undefined;
  try {
    const probe = await startOurs({ db, serverJs });
    specFile = (await recordTurn(probe.base).finally(() => probe.stop())).file;
    const pre = (p: string) => `counts:${p}:`;
    const targets: Target[] = [
      { name: 'floor', redis: false, start: (f, env) => startFloor(db, specFile!, { nodeFlags: f, env }) },
      { name: 'ours', redis: false, start: (f, env) => startOurs({ db, serverJs, nodeFlags: f, env }) },
      {
        name: 'floor+redis',
        redis: true,
        start: (f, env) =>
          startFloor(db, specFile!, { nodeFlags: f, env, redisUrl: r.url, redisPrefix: pre('f') }),
      },
      {
        name: 'ours+redis',
        redis: true,
        start: (f, env) =>
          startOurs({
            db,
            serverJs,
            nodeFlags: f,
            env,
            redisUrl: r.url,
            redisPrefix: pre('o'),
            name: 'ours+redis',
          }),
      },
    ];
    if (opts.baseJs) {
      const baseJs = opts.baseJs;
      targets.push(
        {
          name: 'base',
          redis: false,
          start: (f, env) => startOurs({ db, serverJs: baseJs, nodeFlags: f, env }),
        },
        {
          name: 'base+redis',
          redis: true,
          start: (f, env) =>
            startOurs({
              db,
              serverJs: baseJs,
              nodeFlags: f,
              env,
              redisUrl: r.url,
              redisPrefix: pre('b'),
              name: 'base+redis',
            }),
        },
      );
    }
    // BENCH_COUNT_TARGETS=ours+redis,base+redis counts only those targets.
    const only = process.env.BENCH_COUNT_TARGETS?.split(',');
    for (const t of targets.filter((x) => !only || only.includes(x.name))) {
      const file = join(tmpdir(), `bench-counts-${process.pid}-${t.name}.jsonl`);
      rmSync(file, { force: true });
      const child = await t.start(['--import', 'tsx', '--import', hook], {
        COUNT_FILE: file,
        COUNT_REDIS_PORT: String(r.port),
      });
      try {
        await checkTurn(child.base);
        await runLoad({ base: child.base, body: TURN_BODY, concurrency: opts.concurrency, turns: 300 });
        await sleep(200); // the last turns' releases and log flushes land before the first snapshot
        const pids0 = await db.backendPids();
        const pg0 = pids0.reduce((n, p) => n + cpuSeconds(p), 0);
        const c0 = await snapshot(child, file);
        const s0 = await redisStats(admin, r.proc.pid!);
        const load = await runLoad({
          base: child.base,
          body: TURN_BODY,
          concurrency: opts.concurrency,
          turns: opts.turns,
        });
        await sleep(200);
        const c1 = await snapshot(child, file);
        const s1 = await redisStats(admin, r.proc.pid!);
        const pids1 = [...new Set([...pids0, ...(await db.backendPids())])];
        const pg1 = pids1.reduce((n, p) => n + cpuSeconds(p), 0);
        const n = Math.max(1, load.ok);
        const names = Object.entries(s1.byName)
          .map(([k, v]) => [k, (v - (s0.byName[k] ?? 0)) / n] as const)
          .filter(([k, v]) => v > 0.001 && k !== 'info')
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${fmt(v, 2)}`)
          .join(', ');
        rows.push({
          target: t.name,
          turns: load.ok,
          serverCpuUs: (c1.cpuUs - c0.cpuUs) / n,
          allocatedKb: (c1.allocatedBytes - c0.allocatedBytes) / 1024 / n,
          survivedKb: (c1.gc.survivedBytes - c0.gc.survivedBytes) / 1024 / n,
          promotedKb: (c1.gc.promotedBytes - c0.gc.promotedBytes) / 1024 / n,
          scavengesPer1k: ((c1.gc.scavenges - c0.gc.scavenges) * 1000) / n,
          markCompactsPer1k: ((c1.gc.markCompacts - c0.gc.markCompacts) * 1000) / n,
          redisCpuUs: t.redis ? ((s1.cpuS - s0.cpuS) * 1e6) / n : 0,
          pgCpuUs: ((pg1 - pg0) * 1e6) / n,
          pgStatements: (c1.pgQueries - c0.pgQueries) / n,
          pgWrites: (c1.pgWrites - c0.pgWrites) / n,
          redisRoundTrips: (c1.redisWrites - c0.redisWrites) / n,
          redisClientCommands: (c1.redisCommands - c0.redisCommands) / n,
          // One INFO per snapshot is ours, not the server's.
          redisServerCommands: (s1.commands - s0.commands - 1) / n,
          redisServerReads: (s1.reads - s0.reads - 1) / n,
          byName: t.redis ? names : '—',
        });
        console.log(`  counted ${t.name}: ${load.ok} turns, ${load.errors} errors`);
      } finally {
        await child.stop();
        rmSync(file, { force: true });
      }
    }
  } finally {
    admin.disconnect();
    r.proc.kill();
    await db.drop();
    if (specFile) rmSync(specFile, { force: true });
  }
  return rows;
}

export function renderCounts(rows: CountRow[], render = table): string {
  return render(
    [
      'target',
      'server CPU µs/turn',
      'server KB allocated/turn',
      'KB kept by scavenges/turn',
      'KB promoted/turn',
      'scavenges/1k turns',
      'full GCs/1k turns',
      'Redis CPU µs/turn',
      'PG CPU µs/turn',
      'PG statements/turn',
      'PG socket writes/turn',
      'Redis round trips/turn',
      'Redis cmds/turn (client)',
      'Redis cmds/turn (server, incl. in scripts)',
      'Redis commands by name (server, per turn)',
    ],
    rows.map((r) => [
      r.target,
      fmt(r.serverCpuUs, 0),
      fmt(r.allocatedKb, 1),
      fmt(r.survivedKb, 1),
      fmt(r.promotedKb, 1),
      fmt(r.scavengesPer1k, 1),
      fmt(r.markCompactsPer1k, 2),
      fmt(r.redisCpuUs, 0),
      fmt(r.pgCpuUs, 0),
      fmt(r.pgStatements, 2),
      fmt(r.pgWrites, 2),
      fmt(r.redisRoundTrips, 2),
      fmt(r.redisClientCommands, 2),
      fmt(r.redisServerCommands, 2),
      r.byName,
    ]),
  );
}

if (process.argv[1]?.endsWith('counts.ts')) {
  const rows = await countTurns({
    turns: Number(process.argv[2] ?? 1500),
    concurrency: Number(process.argv[3] ?? 16),
    baseJs: process.env.BENCH_BASE_JS,
  });
  console.log(`\nload average: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(renderCounts(rows, process.argv.includes('--md') ? markdownTable : table));
}
