// API.md §1: an identical keyless POST within 30 s of a turn that has not completed attaches to it; later, it is a new turn.
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { waitFor } from './support/cluster.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { streamRequest } from './support/sse.js';

let tdb: TestDb;
const redis = createTestRedis();
let fake: FakeModel;
let app: FastifyInstance;
let base = '';
const words = (n: number) => Array.from({ length: n }, (_, i) => `palavra${i} `);

beforeAll(async () => {
  tdb = await createTestDb();
  // Replies that outlive the test's steps: the first turn is still streaming when its twins arrive.
  fake = await startFakeModel({ tokens: words(2000), delayMs: 20 });
  app = await createTestApp({ db: tdb.handle, redis, model: fakeProvider(fake), env: {} });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await app.close();
  await fake.close();
  await redis?.close();
  await tdb.drop();
});

const q = async <T>(s: ReturnType<typeof sql>) => rowsOf<T>(await tdb.handle.db.execute(s));

/** POSTs the body and leaves after `start` (the reply goes on); returns the turn's message id. */
async function post(body: object): Promise<string> {
  const r = await streamRequest(base, '/api/v1/chat/stream', { body, disconnectAfter: 1 });
  expect(r.status).toBe(200);
  return r.events[0]!.data.message_id as string;
}

/** Makes the session's turns look `seconds` older: the database's clock is the window's clock. */
const age = (session: string, seconds: number) =>
  tdb.handle.db.execute(sql`
    update chat_messages set created_at = created_at - make_interval(secs => ${seconds})
    where session_id = ${session}`);

const turnsIn = async (session: string) =>
  (
    await q<{ n: number }>(
      sql`select count(*)::int as n from chat_messages where session_id = ${session} and role = 'user'`,
    )
  )[0]!.n;

describe('keyless dedupe window', () => {
  it('attaches an identical POST 1 s and 29 s after a running turn, and starts a new turn after 31 s', async () => {
    const session = 'window-1';
    const body = { message: 'mesma pergunta', session_id: session };
    const first = await post(body);
    await age(session, 1);
    expect(await post(body)).toBe(first);
    await age(session, 28);
    expect(await post(body)).toBe(first);
    expect(await turnsIn(session)).toBe(1);

    // 31 s after the first, while its reply still streams: two identical POSTs at once make ONE new turn.
    await age(session, 2);
    const [x, y] = await Promise.all([post(body), post(body)]);
    expect(x).not.toBe(first);
    expect(y).toBe(x);
    expect(await turnsIn(session)).toBe(2);
    const [old] = await q<{ status: string }>(sql`select status from chat_messages where id = ${first}`);
    expect(old!.status).toBe('streaming');

    // Both replies still end normally (each releases only its own key).
    for (const id of [first, x]) {
      const stop = await fetch(`${base}/api/v1/chat/messages/${id}/stop`, { method: 'POST' });
      expect(stop.status).toBe(200);
    }
    await waitFor(async () => {
      const rows = await q<{ n: number }>(sql`
        select count(*)::int as n from chat_messages
        where session_id = ${session} and role = 'user' and idempotency_key is not null`);
      return rows[0]!.n === 0;
    });
  });

  it('a different body, or the same body in another session, is never attached', async () => {
    const first = await post({ message: 'uma', session_id: 'window-2' });
    expect(await post({ message: 'outra', session_id: 'window-2' })).not.toBe(first);
    expect(await post({ message: 'uma', session_id: 'window-3' })).not.toBe(first);
    for (const s of ['window-2', 'window-3']) {
      const ids = await q<{ id: string }>(
        sql`select id from chat_messages where session_id = ${s} and status = 'streaming'`,
      );
      for (const { id } of ids) await fetch(`${base}/api/v1/chat/messages/${id}/stop`, { method: 'POST' });
    }
  });
});
