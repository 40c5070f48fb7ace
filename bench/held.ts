// Held replies: N live replies (a slow model process holds each open) and N followers on one instance.
// Per level: RSS, CPU, heartbeat lag, open descriptors, Postgres statements/s, JS allocation rate (above
// ~1 MB/s V8's memory reducer does not run: the heap keeps its garbage headroom), refusals.
// Run: npm run bench:held -- [levels=1000,5000,10000] [--followers=10000] [--model=h2c|h1|inproc]
//      [--floor=N: a bare node:http server holding N SSE streams, the reference floor]
//      [--snapshot=DIR: heap snapshots at 10 and at the first level] [--md]
// Env: HELD_NODE_FLAGS (extra node flags for the server), HELD_SERVER_ENV ('K=V K2=V2', environment for the server).
// Production path: the built server (dist/, as production runs it; `npm run bench:held` builds
// first), real Postgres (a bench database), a private redis-server, SSE heartbeat 5 s. The count
// hook is compiled to JS beside dist/ so no TypeScript loader sits in the measured process, and
// `--expose-gc` lets it report the heap that survives a full collection (live, not garbage).
// `--model=inproc` runs bench/held-server.ts under tsx instead (an in-process slow model).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import ts from 'typescript';
import { snapshot, startPrivateRedis, type Totals } from './counts.js';
import { ADMIN_URL, createBenchDb } from './pgadmin.js';
import { type Child, cpuSeconds, freePort, spawnServer } from './procs.js';
import { fmt, markdownTable, percentile, sleep, table } from './stats.js';
import { BENCH_JWT_SECRET, productionNodeFlags, ROOT } from './targets.js';

const HEARTBEAT_MS = 5000;
const WINDOW_MS = Number(process.env.HELD_WINDOW_MS ?? 20_000);
const OPEN_CONCURRENCY = 48;
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const MODEL = (arg('model') ?? 'h2c') as 'h2c' | 'h1' | 'inproc';
const SNAPSHOT_DIR = arg('snapshot');

interface Held {
  lastPing: number;
  open: boolean;
  messageId?: string;
}

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** A bench module compiled to plain JS under dist/bench (its imports resolve from the project). */
function compiled(name: string): string {
  const out = join(ROOT, 'dist/bench', `${name}.js`);
  mkdirSync(dirname(out), { recursive: true });
  const source = readFileSync(join(ROOT, 'bench', `${name}.ts`), 'utf8');
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023 },
  }).outputText;
  writeFileSync(out, js);
  return out;
}

async function startModel(): Promise<{ url: string; proc: ChildProcess } | null> {
  if (MODEL === 'inproc') return null;
  const port = await freePort();
  const args = ['--import', 'tsx', join(ROOT, 'bench/slow-model.ts'), String(port)];
  const proc = spawn(process.execPath, MODEL === 'h2c' ? [...args, '--h2c'] : args, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', () => reject(new Error('slow model exited')));
  });
  return { url: `http://127.0.0.1:${port}/v1`, proc };
}

async function xacts(db: string): Promise<number> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  const { rows } = await c.query(
    'select xact_commit + xact_rollback as n from pg_stat_database where datname = $1',
    [db],
  );
  await c.end();
  return Number(rows[0]?.n ?? 0);
}

// A bench stopped with Ctrl-C or SIGTERM must not leave its server, model and Redis running.
const children = new Set<ChildProcess>();
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  });

/** One server (and its model, Redis, database); `kind` says what the levels count. */
async function phase(kind: 'live' | 'followers' | 'floor', levels: number[]): Promise<string[][]> {
  const redis = await startPrivateRedis();
  const db = await createBenchDb('held');
  await db.migrate();
  const model = kind === 'floor' ? null : await startModel();
  const countFile = join(tmpdir(), `bench-held-${process.pid}-${kind}.jsonl`);
  const port = await freePort();
  if (SNAPSHOT_DIR) mkdirSync(SNAPSHOT_DIR, { recursive: true });
  const child: Child = await spawnServer({
    name: 'held',
    args: [
      '--expose-gc',
      // Our server starts as production starts it (the Dockerfile's CMD flags); the bare floor on Node's defaults.
      ...(kind === 'floor' ? [] : productionNodeFlags()),
      // Experiments: V8 flags (e.g. --max-semi-space-size=4) for the measured server.
      ...(process.env.HELD_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      ...(SNAPSHOT_DIR ? ['--heapsnapshot-signal=SIGPWR', `--diagnostic-dir=${SNAPSHOT_DIR}`] : []),
      ...(MODEL === 'inproc' && kind !== 'floor' ? ['--import', 'tsx'] : []),
      '--import',
      compiled('count-hook'),
      kind === 'floor'
        ? compiled('sse-floor')
        : MODEL === 'inproc'
          ? join(ROOT, 'bench/held-server.ts')
          : join(ROOT, 'dist/src/server.js'),
    ],
    cwd: ROOT,
    port,
    env: {
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: '20',
      MIGRATE_ON_BOOT: 'false',
      RATE_LIMIT_CHAT_PER_MINUTE: '100000',
      RATE_LIMIT_READ_PER_MINUTE: '1000000',
      MAX_CONCURRENT_GENERATIONS: '1000',
      JWT_SECRET: BENCH_JWT_SECRET,
      SSE_HEARTBEAT_MS: String(HEARTBEAT_MS),
      PRODUCER_HEARTBEAT_MS: '5000',
      SHUTDOWN_GRACE_MS: '0',
      // Experiments: environment for the measured server only, e.g. HELD_SERVER_ENV='MALLOC_ARENA_MAX=2'
      // or 'LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'.
      ...Object.fromEntries(
        (process.env.HELD_SERVER_ENV ?? '')
          .split(' ')
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      ),
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'held:',
      COUNT_FILE: countFile,
      COUNT_REDIS_PORT: String(redis.port),
      ...(model
        ? {
            LLM_BASE_URL: model.url,
            LLM_API_KEY: 'bench',
            LLM_HTTP2: String(MODEL === 'h2c'),
            LLM_IDLE_TIMEOUT_MS: '600000',
          }
        : {}),
    },
  });
  for (const c of [child.proc, model?.proc, redis.proc]) if (c) children.add(c);
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const streams: Held[] = [];
  let gaps: number[] = [];
  let measuring = false;
  let failures = 0;
  let refused = 0;

  const open = (path: string, body: string | null) =>
    new Promise<void>((resolve) => {
      const h: Held = { lastPing: 0, open: false };
      const req = request(
        {
          agent,
          host: '127.0.0.1',
          port,
          path,
          method: body ? 'POST' : 'GET',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        },
        (res) => {
          if (res.statusCode !== 200) {
            if (res.statusCode === 503) refused++;
            else failures++;
            res.resume();
            resolve();
            return;
          }
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            const now = Date.now();
            if (!h.open && chunk.includes('"type":"start"')) {
              h.open = true;
              h.lastPing = now;
              h.messageId = /"message_id":"([^"]+)"/.exec(chunk)?.[1];
              streams.push(h);
              resolve();
            }
            if (chunk.includes(': ping')) {
              if (measuring && h.lastPing) gaps.push(now - h.lastPing);
              h.lastPing = now;
            } else if (h.open) h.lastPing = now; // any write resets the server's idle clock too
          });
          res.on('end', () => {
            h.open = false;
            resolve();
          });
          res.on('error', () => {
            h.open = false;
          });
        },
      );
      req.on('error', () => {
        failures++;
        resolve();
      });
      req.end(body ?? undefined);
    });
  const reply = () => open('/api/v1/chat/stream', JSON.stringify({ message: 'conte uma história longa' }));

  const fill = async (count: number, one: (i: number) => Promise<void>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: OPEN_CONCURRENCY }, async () => {
        while (next < count) await one(next++);
      }),
    );
  };
  const heapSnapshot = async (label: string) => {
    if (!SNAPSHOT_DIR) return;
    const before = new Set(readdirSync(SNAPSHOT_DIR));
    process.kill(child.pid, 'SIGPWR');
    for (;;) {
      await sleep(500);
      const added = readdirSync(SNAPSHOT_DIR).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
      if (added.length === 0) continue;
      // Written as a stream: finished once its size stops changing.
      const file = join(SNAPSHOT_DIR, added[0]!);
      let size = -1;
      while (statSync(file).size !== size || size === 0) {
        size = statSync(file).size;
        await sleep(2000);
      }
      console.log(`  heap snapshot (${label}): ${file}`);
      return;
    }
  };

  const rows: string[][] = [];
  let opened = 0;
  try {
    // Followers follow 100 live replies; the levels count followers.
    const targets: string[] = [];
    // The idle server (after boot, nothing held): the base every per-reply figure sits on.
    const idle: Totals = await snapshot(child, countFile);
    const idleGc = idle.afterGc
      ? `, heap after full GC ${fmt(idle.afterGc.mem.heapUsed / 1048576, 0)} MB`
      : '';
    console.log(`  idle: RSS ${fmt(idle.rss / 1048576, 0)} MB${idleGc}`);
    if (kind === 'followers') {
      await fill(100, () => reply());
      for (const s of streams) if (s.messageId) targets.push(s.messageId);
    } else if (SNAPSHOT_DIR) {
      await fill(10, () => reply());
      opened = 10;
      await sleep(3000);
      await heapSnapshot('10 replies');
    }
    for (const level of levels) {
      const t0 = Date.now();
      await fill(level - opened, (i) =>
        kind === 'live'
          ? reply()
          : open(kind === 'floor' ? `/sse/${i}` : `/api/v1/chat/stream/${targets[i % targets.length]}`, null),
      );
      opened = level;
      const openS = (Date.now() - t0) / 1000;
      await sleep(3000);
      const pids = await db.backendPids();
      const pg0 = pids.reduce((n, p) => n + cpuSeconds(p), 0);
      const x0 = await xacts(db.name);
      const s0: Totals = await snapshot(child, countFile);
      gaps = [];
      measuring = true;
      const w0 = Date.now();
      await sleep(WINDOW_MS);
      measuring = false;
      const s1: Totals = await snapshot(child, countFile);
      const windowS = (Date.now() - w0) / 1000;
      const x1 = await xacts(db.name);
      const pids1 = [...new Set([...pids, ...(await db.backendPids())])];
      const pg1 = pids1.reduce((n, p) => n + cpuSeconds(p), 0);
      const live = streams.filter((s) => s.open).length;
      const m = s1.mem;
      const mb = (b: number) => fmt(b / 1024 / 1024, 0);
      const label = {
        live: `${level} live (${MODEL})`,
        followers: `${level} followers`,
        floor: `${level} bare node:http SSE`,
      };
      rows.push([
        label[kind],
        String(live),
        fmt(openS, 1),
        fmt(s1.rss / 1024 / 1024, 0),
        `${mb(m.heapUsed)} / ${mb(m.heapTotal)}`,
        s1.afterGc ? `${mb(s1.afterGc.mem.heapUsed)} (${fmt(s1.afterGc.mem.rss / 1024 / 1024, 0)})` : '—',
        // The forced collection of the first snapshot is left out of the window's CPU.
        `${fmt((s1.cpuUs - (s0.afterGc?.cpuUs ?? s0.cpuUs)) / 1e6 / windowS, 2)}`,
        fmt((pg1 - pg0) / windowS, 2),
        String(fds(child.pid)),
        fmt((s1.pgQueries - s0.pgQueries) / windowS, 0),
        fmt((x1 - x0) / windowS, 0),
        fmt((s1.allocatedBytes - s0.allocatedBytes) / 1048576 / windowS, 2),
        // Promoted by scavenges: what fills the old generation between major GCs (garbage there
        // waits for the next one, and the old space's committed pages grow with it).
        `${fmt((s1.gc.promotedBytes - s0.gc.promotedBytes) / 1048576 / windowS, 2)} (${s1.gc.scavenges - s0.gc.scavenges} / ${s1.gc.markCompacts - s0.gc.markCompacts - 1})`,
        `${fmt(percentile(gaps, 50), 0)} / ${fmt(percentile(gaps, 99), 0)}`,
        `${fmt(s1.delay.p50, 1)} / ${fmt(s1.delay.p99, 1)}`,
        `${refused} / ${failures}`,
      ]);
      console.log(`  ${rows.at(-1)!.join(' | ')}`);
      console.log(`  heap spaces (committed / used MB): ${JSON.stringify(s1.spaces)}`);
      if (kind === 'live' && level === levels[0]) await heapSnapshot(`${level} replies`);
    }
  } finally {
    agent.destroy();
    await child.stop();
    model?.proc.kill();
    redis.proc.kill();
    await db.drop();
    rmSync(countFile, { force: true });
  }
  return rows;
}

async function main() {
  const first = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : '1000,5000,10000';
  const levels = first.split(',').map(Number);
  const followers = Number(arg('followers') ?? 10_000);
  const floor = Number(arg('floor') ?? 0);
  const rows = levels[0] ? await phase('live', levels) : []; // `0`: followers only
  if (followers > 0) rows.push(...(await phase('followers', [followers])));
  if (floor > 0) rows.push(...(await phase('floor', [floor])));
  const render = process.argv.includes('--md') ? markdownTable : table;
  console.log(
    `\nload average: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; Node ${process.version}; our server's node flags: ${productionNodeFlags().join(' ') || 'none'}`,
  );
  console.log(
    render(
      [
        'held',
        'open at end',
        'ramp s',
        'RSS MB',
        'heap used / total MB',
        'heap after full GC MB (RSS)',
        'server CPU cores',
        'PG CPU cores',
        'server fds',
        'PG statements/s (client)',
        'PG xacts/s (pg_stat_database)',
        'JS allocated MB/s',
        'promoted MB/s (scavenges / major GCs)',
        `ping gap p50 / p99 ms (interval ${HEARTBEAT_MS})`,
        'event-loop delay p50 / p99 ms',
        '503 refused / other failures',
      ],
      rows,
    ),
  );
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
