// What a turn costs the database: one write round trip before `start`, writes bounded by time, not chunks.
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db, DbHandle } from '../src/db/client.js';
import * as schema from '../src/db/schema/index.js';
import { createTestApp } from './support/app.js';
import { backends, createTestDb, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { streamRequest } from './support/sse.js';

let tdb: TestDb;
let fake: FakeModel;
const pools: pg.Pool[] = [];
const statements: Array<{ at: number; text: string }> = [];
const apps: FastifyInstance[] = [];

/** A real pool whose queries are recorded: the database is real, we only watch what is sent. */
function countingHandle(url: string): DbHandle {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('error', () => {}); // idle clients are terminated when the test database is dropped
  pools.push(pool);
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    const first = args[0] as string | { text: string };
    statements.push({ at: Date.now(), text: typeof first === 'string' ? first : first.text });
    return query(...args);
  };
  const db = drizzle(pool, { schema, casing: 'snake_case' }) as unknown as Db;
  return {
    db,
    kind: 'postgres',
    describe: 'counting pool',
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {},
  };
}
// Chat writes only: the investigations job runner polls the same pool in the background.
const isWrite = (text: string) =>
  /^\s*(with|insert|update|delete)\b/i.test(text) &&
  /chat_messages|chat_sessions|generation_usage/.test(text);

async function start(handle: DbHandle, env: Record<string, string>) {
  const model = fakeProvider(fake);
  const app = await createTestApp({ db: handle, redis: null, model, env });
  await app.listen({ port: 0, host: '127.0.0.1' });
  apps.push(app);
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
});
afterAll(async () => {
  for (const a of apps) await a.close();
  for (const p of pools) await p.end();
  await fake.close();
  await tdb.drop();
});

// Counts node-postgres round trips; PGlite has no wire to count on.
describe.skipIf(!backends().databaseUrl)('database writes per turn', () => {
  it('sends exactly one write round trip before the start event', async () => {
    if (!tdb.url) throw new Error('needs TEST_DATABASE_URL');
    const base = await start(countingHandle(tdb.url), {});
    fake.setScript({ tokens: Array(50).fill('token '), firstTokenDelayMs: 200 });
    let startAt = 0;
    const t0 = Date.now();
    statements.length = 0;
    const r = await streamRequest(base, '/api/v1/chat/stream', {
      body: { message: 'oi', session_id: 'writes-1' },
      onEvent: (e) => {
        if (e.data.type === 'start') startAt = Date.now();
      },
    });
    expect(r.events.at(-1)!.data.type).toBe('complete');
    const before = statements.filter((s) => s.at >= t0 && s.at <= startAt);
    expect(before.filter((s) => isWrite(s.text))).toHaveLength(1);
    expect(before.filter((s) => isWrite(s.text))[0]!.text).toMatch(/insert into chat_sessions/);
    // A fast reply: the turn insert and the final update, nothing per chunk.
    expect(statements.filter((s) => isWrite(s.text))).toHaveLength(2);
  });

  it('bounds writes by the checkpoint interval, whatever the number of chunks', async () => {
    if (!tdb.url) throw new Error('needs TEST_DATABASE_URL');
    const base = await start(countingHandle(tdb.url), {
      CHECKPOINT_MS: '300',
      PRODUCER_HEARTBEAT_MS: '5000',
    });
    const writesFor = async (tokens: number) => {
      fake.setScript({ tokens: Array(tokens).fill('w '), delayMs: 1500 / tokens });
      statements.length = 0;
      const t0 = Date.now();
      const r = await streamRequest(base, '/api/v1/chat/stream', { body: { message: `conte ${tokens}` } });
      expect(r.events.filter((e) => e.data.type === 'chunk').length).toBe(tokens);
      const elapsed = Date.now() - t0;
      const writes = statements.filter((s) => isWrite(s.text)).length;
      // insert + final + at most one checkpoint per interval elapsed: the bound is in the time this
      // run took, so a loaded machine (slower replies) loosens it without making it wrong.
      expect(writes).toBeLessThanOrEqual(2 + Math.ceil(elapsed / 300) + 1);
      return writes;
    };
    await writesFor(20);
    const many = await writesFor(300);
    // Nothing per chunk: a writer that followed the chunks would make 300+ writes here (a timer
    // only reaches 150 if this 1.5 s reply took over 40 s).
    expect(many).toBeLessThan(300 / 2);
  });
});
