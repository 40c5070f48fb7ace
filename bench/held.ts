// Held streams: N idle resumable streams on one instance (slow model, heartbeats on): RSS, CPU, heartbeat lag, memory split.
// Run: node --import tsx bench/held.ts [levels=1000,5000,10000] [--md]
// Production path: Redis (a private redis-server), Postgres, SSE heartbeat every 5 s, producer heartbeat every 5 s.
import { readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshot, startPrivateRedis, type Totals } from './counts.js';
import { createBenchDb } from './pgadmin.js';
import { cpuSeconds, freePort, spawnServer } from './procs.js';
import { fmt, markdownTable, percentile, sleep, table } from './stats.js';
import { BENCH_JWT_SECRET, ROOT } from './targets.js';

const HEARTBEAT_MS = 5000;
const WINDOW_MS = Number(process.env.HELD_WINDOW_MS ?? 20_000);
const OPEN_CONCURRENCY = 48;

interface Held {
  lastPing: number;
  open: boolean;
}

const rssMb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function main() {
  const levels = (process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : '1000,5000,10000')
    .split(',')
    .map(Number);
  const redis = await startPrivateRedis();
  const db = await createBenchDb('held');
  const countFile = join(tmpdir(), `bench-held-${process.pid}.jsonl`);
  const port = await freePort();
  const child = await spawnServer({
    name: 'held',
    args: [
      '--import',
      'tsx',
      '--import',
      join(ROOT, 'bench/count-hook.ts'),
      join(ROOT, 'bench/held-server.ts'),
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
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'held:',
      COUNT_FILE: countFile,
      COUNT_REDIS_PORT: String(redis.port),
    },
  });
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const streams: Held[] = [];
  let gaps: number[] = [];
  let measuring = false;
  let failures = 0;

  const open = () =>
    new Promise<void>((resolve) => {
      const h: Held = { lastPing: 0, open: false };
      const req = request(
        {
          agent,
          host: '127.0.0.1',
          port,
          path: '/api/v1/chat/stream',
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            const now = Date.now();
            if (!h.open && chunk.includes('"type":"start"')) {
              h.open = true;
              h.lastPing = now;
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
      req.end(JSON.stringify({ message: 'conte uma história longa' }));
    });

  const rows: string[][] = [];
  let opened = 0;
  try {
    for (const level of levels) {
      const t0 = Date.now();
      let next = opened;
      await Promise.all(
        Array.from({ length: OPEN_CONCURRENCY }, async () => {
          while (next < level) {
            next++;
            await open();
          }
        }),
      );
      opened = level;
      const openS = (Date.now() - t0) / 1000;
      await sleep(3000);
      const pids = await db.backendPids();
      const pg0 = pids.reduce((n, p) => n + cpuSeconds(p), 0);
      const r0 = cpuSeconds(redis.proc.pid!);
      const s0: Totals = await snapshot(child, countFile);
      gaps = [];
      measuring = true;
      const w0 = Date.now();
      await sleep(WINDOW_MS);
      measuring = false;
      const s1: Totals = await snapshot(child, countFile);
      const windowS = (Date.now() - w0) / 1000;
      const pids1 = [...new Set([...pids, ...(await db.backendPids())])];
      const pg1 = pids1.reduce((n, p) => n + cpuSeconds(p), 0);
      const r1 = cpuSeconds(redis.proc.pid!);
      const live = streams.filter((s) => s.open).length;
      const rss = rssMb(child.pid);
      const m = s1.mem;
      const mb = (b: number) => fmt(b / 1024 / 1024, 0);
      rows.push([
        String(level),
        String(live),
        fmt(openS, 1),
        fmt(rss, 0),
        `${mb(m.heapUsed)} / ${mb(m.heapTotal)}`,
        `${mb(m.external)} (${mb(m.arrayBuffers)})`,
        `${fmt((s1.cpuUs - s0.cpuUs) / 1e6 / windowS, 2)}`,
        fmt((pg1 - pg0) / windowS, 2),
        fmt((r1 - r0) / windowS, 3),
        fmt((s1.pgQueries - s0.pgQueries) / windowS, 0),
        fmt((s1.redisCommands - s0.redisCommands) / windowS, 0),
        `${fmt(percentile(gaps, 50), 0)} / ${fmt(percentile(gaps, 99), 0)} / ${fmt(Math.max(0, ...gaps), 0)}`,
        `${fmt(s1.delay.p50, 1)} / ${fmt(s1.delay.p99, 1)} / ${fmt(s1.delay.max, 0)}`,
        String(failures),
      ]);
      console.log(`  ${level} streams held: ${rows.at(-1)!.join(' | ')}`);
    }
  } finally {
    agent.destroy();
    await child.stop();
    redis.proc.kill();
    await db.drop();
    rmSync(countFile, { force: true });
  }
  const render = process.argv.includes('--md') ? markdownTable : table;
  console.log(`\nload average: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(
    render(
      [
        'streams',
        'open at end',
        'ramp s',
        'RSS MB',
        'heap used / total MB',
        'external (array buffers) MB',
        'server CPU cores',
        'PG CPU cores',
        'Redis CPU cores',
        'PG statements/s',
        'Redis cmds/s',
        `ping gap p50 / p99 / max ms (interval ${HEARTBEAT_MS})`,
        'event-loop delay p50 / p99 / max ms',
        'open failures',
      ],
      rows,
    ),
  );
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
