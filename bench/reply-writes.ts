// Reply writes under many live replies: Postgres statements per second in a steady phase, then a burst of finals.
//
//   node --import tsx bench/reply-writes.ts [live=1000] [steadyMs=10000]
//   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test (a fresh database is created beside it)
//
// Builds the app over two counting pools (request and writer) on a fresh database, holds `live`
// replies on a local OpenAI-compatible model (a token every 500 ms, so every reply grows at every
// checkpoint), counts the UPDATEs of chat_messages sent during the steady phase, then releases every
// reply at once and reports how long until all `complete`d and how many rows did not end completed.
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import pino from 'pino';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { type Db, type DbHandle, rowsOf } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';
import * as schema from '../src/db/schema/index.js';
import { createOpenAIProvider } from '../src/modules/llm/openai.js';
import { startHeldModel } from '../test/support/held-model.js';

const live = Number(process.argv[2] ?? 1000);
const steadyMs = Number(process.argv[3] ?? 10_000);
const base = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const out = pino({ base: null, timestamp: false });

let updates = 0;
const pools: pg.Pool[] = [];
function countingDb(url: string, max: number): Db {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {});
  pools.push(pool);
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    const first = args[0] as string | { text: string };
    if (/update chat_messages/.test(typeof first === 'string' ? first : first.text)) updates++;
    return query(...args);
  };
  return drizzle(pool, { schema, casing: 'snake_case' }) as unknown as Db;
}

const name = `bench_rw_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`create database ${name}`);
const u = new URL(base);
u.pathname = `/${name}`;
const url = u.toString();
const db = countingDb(url, 20);
await migrate(db);
const handle: DbHandle = {
  db,
  kind: 'postgres',
  describe: 'counting pools',
  ping: async () => {},
  close: async () => {},
  writer: { db: countingDb(url, 2), connections: 2 },
};
const model = await startHeldModel({ trickleMs: 500 });
const app = await buildApp({
  config: loadConfig({ LOG_LEVEL: 'silent', NODE_ENV: 'test', RATE_LIMIT_CHAT_PER_MINUTE: '100000' }),
  db: handle,
  redis: null,
  logger: pino({ level: 'silent' }),
  model: createOpenAIProvider({
    baseUrl: model.url,
    apiKey: 'k',
    model: 'm',
    agentModels: {},
    connectTimeoutMs: 30_000,
    idleTimeoutMs: 600_000,
    log: pino({ level: 'silent' }),
  }),
});
await app.ready();

const responses: Array<Promise<{ body: string }>> = [];
for (let i = 0; i < live; i += 250) {
  for (let j = i; j < Math.min(live, i + 250); j++) {
    responses.push(
      app.inject({
        method: 'POST',
        url: '/api/v1/chat/stream',
        payload: { message: `q ${j}`, session_id: `b-${j}` },
      }),
    );
  }
  await model.waitHeld(Math.min(live, i + 250), 120_000);
}

const commits = async () => {
  await admin.query('select pg_stat_clear_snapshot()');
  const r = await admin.query('select xact_commit::bigint as n from pg_stat_database where datname = $1', [
    name,
  ]);
  return Number(r.rows[0].n);
};
// Let every reply reach its steady rhythm (first checkpoint written) before counting.
await new Promise((r) => setTimeout(r, 2000));
const c0 = await commits();
updates = 0;
const t0 = Date.now();
await new Promise((r) => setTimeout(r, steadyMs));
const steadyUpdates = updates;
const seconds = (Date.now() - t0) / 1000;
// Backends report their counters to the statistics system at most once a second.
await new Promise((r) => setTimeout(r, 1500));
const c1 = await commits();

const released = Date.now();
updates = 0;
model.release();
await Promise.all(responses);
const burstMs = Date.now() - released;
const burstUpdates = updates;
const notCompleted = rowsOf<{ n: number }>(
  await db.execute(
    sql`select count(*)::int as n from chat_messages where role = 'assistant' and status <> 'completed'`,
  ),
)[0]!.n;

out.info({
  live,
  steady_s: Number(seconds.toFixed(1)),
  update_statements_per_s: Number((steadyUpdates / seconds).toFixed(1)),
  update_statements_per_tick: Number((steadyUpdates / seconds).toFixed(1)), // CHECKPOINT_MS = 1000
  per_reply_second: Number((steadyUpdates / seconds / live).toFixed(4)),
  xact_commit_per_s_approx: Number(((c1 - c0) / (seconds + 1.5)).toFixed(1)),
  burst_ms: burstMs,
  burst_update_statements: burstUpdates,
  not_completed: notCompleted,
});

await app.close();
await model.close();
for (const p of pools) await p.end();
await admin.query(`drop database if exists ${name} with (force)`);
await admin.end();
