// Thousands of live replies on one instance: batched checkpoints, and a burst of final writes that never times out.
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Db, type DbHandle, rowsOf } from '../src/db/client.js';
import * as schema from '../src/db/schema/index.js';
import { createOpenAIProvider } from '../src/modules/llm/openai.js';
import { createTestApp } from './support/app.js';
import { backends, createTestDb, type TestDb } from './support/backends.js';
import { type HeldModel, startHeldModel } from './support/held-model.js';
import { parseSse } from './support/sse.js';

let tdb: TestDb;
const pools: pg.Pool[] = [];
const apps: FastifyInstance[] = [];
const models: HeldModel[] = [];
/** The request pool of the last handle built (see handleWith). */
let requestPool: pg.Pool;

type Injected = Promise<{ statusCode: number; body: string }>;

/** Chat writes (not reads, not the job runner's polling) seen on either pool, with when they were sent. */
const writes: number[] = [];
const isChatWrite = (text: string) =>
  /^\s*(with|insert|update|delete)\b/i.test(text) && /update chat_messages/.test(text);

/** Real pools on the test database whose queries are counted: we only watch what is sent. */
function watchedPool(url: string, max: number) {
  // The same settings as createDb's pools: a 5 s connection timeout is what the burst used to hit.
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', () => {});
  pools.push(pool);
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    const first = args[0] as string | { text: string };
    if (isChatWrite(typeof first === 'string' ? first : first.text)) writes.push(Date.now());
    return query(...args);
  };
  return drizzle(pool, { schema, casing: 'snake_case' }) as unknown as Db;
}

function handleWith(url: string, poolMax: number, writerConnections: number): DbHandle {
  const db = watchedPool(url, poolMax);
  requestPool = pools.at(-1)!;
  return {
    db,
    kind: 'postgres',
    describe: `watched pool of ${poolMax} + writer pool of ${writerConnections}`,
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {},
    writer: { db: watchedPool(url, writerConnections), connections: writerConnections },
  };
}

async function appWith(handle: DbHandle, model: HeldModel, env: Record<string, string> = {}) {
  const app = await createTestApp({
    db: handle,
    redis: null,
    // The model holds a reply for as long as the test needs: no idle timeout cuts it.
    model: createOpenAIProvider({
      baseUrl: model.url,
      apiKey: 'k',
      model: 'm',
      agentModels: {},
      connectTimeoutMs: 30_000,
      idleTimeoutMs: 120_000,
      log: pino({ level: 'silent' }),
    }),
    env: { RATE_LIMIT_CHAT_PER_MINUTE: '100000', ...env },
  });
  apps.push(app);
  return app;
}

/**
 * Starts `n` replies (in waves, so the turn inserts do not all wait on the request pool at once)
 * and resolves once all of them are held by the model; the returned promises are the whole
 * SSE responses.
 */
async function startHeld(app: FastifyInstance, model: HeldModel, n: number, tag: string) {
  const released = () => model.isReleased();
  const responses: Injected[] = [];
  // A turn refused before its reply started (a 503 when the shared Postgres is out of connections)
  // is never held: say so at once rather than after the wait.
  let refused: (err: Error) => void = () => {};
  const anyRefused = new Promise<never>((_, reject) => {
    refused = reject;
  });
  anyRefused.catch(() => {});
  const wave = 250;
  for (let i = 0; i < n; i += wave) {
    for (let j = i; j < Math.min(n, i + wave); j++) {
      const r = app.inject({
        method: 'POST',
        url: '/api/v1/chat/stream',
        payload: { message: `pergunta ${tag} ${j}`, session_id: `${tag}-${j}` },
      });
      // Nothing ends before the release: a response that does was refused or failed on its way to the model.
      r.then((res) => {
        if (!released())
          refused(new Error(`turn ${j} ended while held: ${res.statusCode} ${res.body.slice(-300)}`));
      }, refused);
      responses.push(r);
    }
    await Promise.race([model.waitHeld(Math.min(n, i + wave), 60_000), anyRefused]);
  }
  return responses;
}

/** What each client saw: its message id, the concatenated chunks, and its terminal events. */
async function collect(responses: Injected[]) {
  return (await Promise.all(responses)).map((r) => {
    expect(r.statusCode).toBe(200);
    const { events } = parseSse(r.body);
    const start = events.find((e) => e.data.type === 'start')!;
    return {
      messageId: start.data.message_id as string,
      text: events
        .filter((e) => e.data.type === 'chunk')
        .map((e) => e.data.content)
        .join(''),
      terminal: events.filter((e) => e.data.type === 'complete' || e.data.type === 'error'),
    };
  });
}

async function rowsOfReplies(db: Db, ids: string[]) {
  return rowsOf<{ id: string; status: string; content: string }>(
    await db.execute(
      sql`select id, status, content from chat_messages where id = any(${sql.param(ids)}::uuid[])`,
    ),
  );
}

/**
 * Releases every held reply at once and checks what each client saw against its stored row.
 * With `busyPool`, request traffic holds every connection of the request pool for as long as the
 * replies take to finish (longer than its 5 s connection timeout when they wait on it).
 */
async function releaseAndCheck(app: FastifyInstance, model: HeldModel, n: number, tag: string, busyPool = 0) {
  const responses = await startHeld(app, model, n, tag);
  const busy = await Promise.all(Array.from({ length: busyPool }, () => requestPool.connect()));
  model.release();
  const seen = await collect(responses).finally(() => {
    for (const c of busy) c.release();
  });
  expect(seen).toHaveLength(n);
  for (const s of seen) {
    expect(s.terminal.map((e) => e.data.type)).toEqual(['complete']);
    expect(s.text).toMatch(/perdas\.$/);
  }
  const rows = await rowsOfReplies(
    tdb.handle.db,
    seen.map((s) => s.messageId),
  );
  expect(rows).toHaveLength(n);
  const stored = new Map(rows.map((r) => [r.id, r]));
  const wrong = seen.filter((s) => {
    const row = stored.get(s.messageId);
    return row?.status !== 'completed' || row.content !== s.text;
  });
  expect(wrong.length, `rows not completed with the streamed text, e.g. ${JSON.stringify(wrong[0])}`).toBe(0);
  const [{ n: interrupted } = { n: -1 }] = rowsOf<{ n: number }>(
    await tdb.handle.db.execute(
      sql`select count(*)::int as n from chat_messages where role = 'assistant' and status <> 'completed'`,
    ),
  );
  expect(interrupted).toBe(0);
}

beforeAll(async () => {
  tdb = await createTestDb();
});
// Each test gives its connections back: the shared Postgres has other test files to serve.
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
  for (const m of models.splice(0)) await m.close();
  for (const p of pools.splice(0)) await p.end();
});
afterAll(async () => {
  await tdb.drop();
});

// Counts node-postgres round trips on real pools; PGlite has no pool to shrink nor wire to count on.
describe.skipIf(!backends().databaseUrl)('group commit of reply writes', () => {
  const N = 2000;

  it(`${N} replies released at once all end completed with exactly the streamed text`, async () => {
    const model = await startHeldModel();
    models.push(model);
    const app = await appWith(handleWith(tdb.url!, 10, 2), model);
    await releaseAndCheck(app, model, N, 'burst');
  }, 120_000);

  it('the same (1000 replies) with the request pool shrunk to 2 connections, both busy with requests meanwhile', async () => {
    const model = await startHeldModel();
    models.push(model);
    const app = await appWith(handleWith(tdb.url!, 2, 1), model);
    // The final writes need no connection of the request pool: the writer has its own (here, one).
    await releaseAndCheck(app, model, N / 2, 'small', 2);
  }, 120_000);

  it('a reply whose row the database refuses fails alone, not the replies written with it', async () => {
    // A fault in this test's own database: any update that stores the marker is refused, so this
    // reply's checkpoints and final write fail inside the batches of its neighbours.
    await tdb.handle.db.execute(sql`
      create or replace function refuse_marked_reply() returns trigger language plpgsql as $$
      begin
        if new.content like '%recuse-me%' then raise exception 'refused by the test'; end if;
        return new;
      end $$`);
    await tdb.handle.db.execute(sql`
      create trigger refuse_marked_reply before update on chat_messages
      for each row execute function refuse_marked_reply()`);
    try {
      const model = await startHeldModel({ tailFor: (n) => (n === 7 ? ['recuse-me ', 'aqui.'] : undefined) });
      models.push(model);
      const app = await appWith(handleWith(tdb.url!, 10, 2), model);
      const responses = await startHeld(app, model, 60, 'refused');
      model.release();
      const seen = await collect(responses);
      const refused = seen.filter((s) => s.text.includes('recuse-me'));
      expect(refused).toHaveLength(1);
      expect(refused[0]!.terminal.map((e) => e.data.type)).toEqual(['error']);
      const others = seen.filter((s) => s !== refused[0]);
      for (const s of others) expect(s.terminal.map((e) => e.data.type)).toEqual(['complete']);
      const rows = await rowsOfReplies(
        tdb.handle.db,
        others.map((s) => s.messageId),
      );
      const stored = new Map(rows.map((r) => [r.id, r]));
      expect(
        others.filter(
          (s) =>
            stored.get(s.messageId)?.status !== 'completed' || stored.get(s.messageId)?.content !== s.text,
        ),
      ).toEqual([]);
    } finally {
      await tdb.handle.db.execute(sql`drop trigger if exists refuse_marked_reply on chat_messages`);
    }
  }, 60_000);

  it('a model that emits NUL or a lone surrogate: the reply completes, streamed and stored alike', async () => {
    const model = await startHeldModel({
      tailFor: (n) => (n === 3 ? ['nul \u0000aqui ', 'meio \ud83d ', 'par \ud83d\ude00 fim.'] : undefined),
    });
    models.push(model);
    const app = await appWith(handleWith(tdb.url!, 10, 2), model);
    const responses = await startHeld(app, model, 8, 'unstorable');
    model.release();
    const seen = await collect(responses);
    for (const s of seen) expect(s.terminal.map((e) => e.data.type)).toEqual(['complete']);
    const odd = seen.filter((s) => s.text.includes('meio'));
    expect(odd).toHaveLength(1);
    expect(odd[0]!.text).toContain('nul aqui meio \uFFFD par \ud83d\ude00 fim.');
    const rows = await rowsOfReplies(
      tdb.handle.db,
      seen.map((s) => s.messageId),
    );
    const stored = new Map(rows.map((r) => [r.id, r]));
    expect(
      seen.filter(
        (s) => stored.get(s.messageId)?.status !== 'completed' || stored.get(s.messageId)?.content !== s.text,
      ),
    ).toEqual([]);
  }, 60_000);

  it('a stop recorded in a row reaches its producer at the next checkpoint (no pub/sub), and stops that reply alone', async () => {
    const model = await startHeldModel();
    models.push(model);
    const app = await appWith(handleWith(tdb.url!, 10, 2), model, { CHECKPOINT_MS: '100' });
    const responses = await startHeld(app, model, 3, 'rowstop');
    const ids = rowsOf<{ id: string }>(
      await tdb.handle.db.execute(sql`
        select id from chat_messages where role = 'assistant' and session_id like 'rowstop-%' order by session_id`),
    ).map((r) => r.id);
    expect(ids).toHaveLength(3);
    // What another instance's stop leaves in the row when its pub/sub message is lost (or there is no Redis).
    await tdb.handle.db.execute(sql`
      update chat_messages set metadata = metadata || jsonb_build_object('stop_requested_at', now())
      where id = ${ids[1]}`);
    const stopped = await Promise.race([
      responses[1]!,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('not stopped within 10 s')), 10_000),
      ),
    ]);
    expect(parseSse(stopped.body).events.at(-1)!.data.type).toBe('complete');
    let rows = await rowsOfReplies(tdb.handle.db, ids);
    expect(Object.fromEntries(rows.map((r) => [r.id, r.status]))).toEqual({
      [ids[0]!]: 'streaming',
      [ids[1]!]: 'stopped',
      [ids[2]!]: 'streaming',
    });
    model.release();
    await Promise.all(responses);
    rows = await rowsOfReplies(tdb.handle.db, ids);
    expect(rows.filter((r) => r.status === 'completed')).toHaveLength(2);
  }, 60_000);

  it('writes many live replies in statements bounded by ticks, not by the number of replies', async () => {
    const live = 300;
    const tickMs = 100;
    // Every reply grows (a token every 300 ms) and beats: each one is due at every other tick or so.
    const model = await startHeldModel({ trickleMs: 300 });
    models.push(model);
    const app = await appWith(handleWith(tdb.url!, 10, 2), model, {
      CHECKPOINT_MS: String(tickMs),
      PRODUCER_HEARTBEAT_MS: '200',
    });
    const responses = await startHeld(app, model, live, 'steady');
    const [{ t0 } = { t0: '' }] = rowsOf<{ t0: string }>(
      await tdb.handle.db.execute(sql`select now()::text as t0`),
    );
    writes.length = 0;
    const started = Date.now();
    // Steady phase: until every live reply was written at least twice a second apart (the database's clock).
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [{ n } = { n: 0 }] = rowsOf<{ n: number }>(
        await tdb.handle.db.execute(sql`
          select count(*)::int as n from chat_messages
          where role = 'assistant' and status = 'streaming' and session_id like 'steady-%'
            and heartbeat_at > ${t0}::timestamptz + interval '1 second'`),
      );
      if (n === live) break;
      if (Date.now() > deadline) throw new Error(`only ${n} of ${live} replies written in the steady phase`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const elapsed = Date.now() - started;
    const statements = writes.length;
    // One statement per tick at most (300 replies fit one batch); per reply it would be ≥ 2 × 300.
    expect(statements).toBeGreaterThan(0);
    expect(statements).toBeLessThanOrEqual(Math.ceil(elapsed / tickMs) + 2);
    expect(statements).toBeLessThan(live);
    // The writer's own account, as Prometheus sees it: statements issued and replies per statement.
    const metrics = (await app.inject({ url: '/metrics' })).body;
    const count = Number(
      /cidadao_reply_write_batch_rows_count\{kind="checkpoint"\} (\d+)/.exec(metrics)?.[1],
    );
    const rowsWritten = Number(
      /cidadao_reply_write_batch_rows_sum\{kind="checkpoint"\} (\d+)/.exec(metrics)?.[1],
    );
    expect(rowsWritten / count).toBeGreaterThan(10);
    expect(metrics).toMatch(/^cidadao_reply_write_queue 0$/m);

    model.release();
    const seen = await collect(responses);
    expect(seen.every((s) => s.terminal.length === 1 && s.terminal[0]!.data.type === 'complete')).toBe(true);
    const rows = await rowsOfReplies(
      tdb.handle.db,
      seen.map((s) => s.messageId),
    );
    const stored = new Map(rows.map((r) => [r.id, r]));
    expect(seen.filter((s) => stored.get(s.messageId)?.content !== s.text)).toEqual([]);
  }, 120_000);
});
