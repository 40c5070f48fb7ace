// A turn run by another module (the academy's way): fixed agent, prompt section, and a hook inside the final write.
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import type { FinalOutcome } from '../src/modules/generation/generation.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { streamRequest } from './support/sse.js';

let tdb: TestDb;
const redis = createTestRedis();
let fake: FakeModel;
const apps: FastifyInstance[] = [];

async function instance(r = redis) {
  const app = await createTestApp({ db: tdb.handle, redis: r, model: fakeProvider(fake) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  apps.push(app);
  return { app, base: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` };
}

async function q<T>(query: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await tdb.handle.db.execute(query));
}

beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
  // An extension's own table, written by the hook in the reply's final transaction.
  await tdb.handle.db.execute(
    sql`create table hook_awards (message_id uuid primary key, status text not null, amount int not null)`,
  );
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await fake.close();
  await redis?.close();
  await tdb.drop();
});

const words = (n: number) => Array.from({ length: n }, (_, i) => `palavra${i} `);

describe('turns run by another module', () => {
  it('answers as the fixed agent with the extra prompt, and commits the hook before complete goes out', async () => {
    fake.setScript({ tokens: words(30), delayMs: 2 });
    const a = await instance();
    const seen: FinalOutcome[] = [];
    const turn = await a.app.infra.chat.turns.start(
      { userId: null },
      { message: 'investigue contratos de saúde' },
      undefined,
      {
        fixedAgentId: 'drummond',
        promptSuffix: 'Lição: licitações, nível básico.',
        completeExtra: { conversation_id: 'conv-1' },
        async onFinalize(tx, outcome) {
          seen.push(outcome);
          const amount = outcome.status === 'completed' ? 2 : 0;
          await tx.execute(
            sql`insert into hook_awards (message_id, status, amount) values (${outcome.messageId}, ${outcome.status}, ${amount})`,
          );
          return { xp_awarded: amount, badges_earned: [] };
        },
      },
    );
    expect(turn.kind).toBe('new');
    let awardAtComplete: unknown[] | undefined;
    const live = await streamRequest(a.base, `/api/v1/chat/stream/${turn.messageId}`, {
      method: 'GET',
      onEvent: (e) => {
        if (e.data.type === 'complete')
          awardAtComplete = [q(sql`select amount from hook_awards where message_id = ${turn.messageId}`)];
      },
    });
    const types = live.events.map((e) => e.data.type);
    expect(types).not.toContain('searching');
    expect(live.events.find((e) => e.data.type === 'agent_selected')!.data).toMatchObject({
      agent_id: 'drummond',
    });
    const complete = live.events.at(-1)!.data;
    expect(complete).toMatchObject({
      type: 'complete',
      agent_id: 'drummond',
      conversation_id: 'conv-1',
      xp_awarded: 2,
      badges_earned: [],
    });
    expect(await awardAtComplete![0]).toEqual([{ amount: 2 }]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ status: 'completed', messageId: turn.messageId, agentId: 'drummond' });
    const system = fake.requests.at(-1)!.body?.messages?.find((m) => m.role === 'system')?.content ?? '';
    expect(system).toContain('Lição: licitações, nível básico.');

    // The extension's fields are stored with the row: a rebuild on an instance with no live log repeats them.
    const b = await instance(null);
    const rebuilt = await streamRequest(b.base, `/api/v1/chat/stream/${turn.messageId}`, { method: 'GET' });
    expect(rebuilt.events.at(-1)!.data).toEqual(complete);
  });

  it('stores the reply without the extension’s statements when the hook fails', async () => {
    fake.setScript({ tokens: words(200), delayMs: 10 });
    const a = await instance();
    const failing = await a.app.infra.chat.turns.start({ userId: null }, { message: 'oi' }, undefined, {
      async onFinalize(tx, outcome) {
        await tx.execute(
          sql`insert into hook_awards (message_id, status, amount) values (${outcome.messageId}, ${outcome.status}, 1)`,
        );
        throw new Error('extension broke');
      },
    });
    const res = await streamRequest(a.base, `/api/v1/chat/stream/${failing.messageId}`, { method: 'GET' });
    const last = res.events.at(-1)!.data;
    expect(last).toMatchObject({ type: 'complete', finish_reason: 'stop' });
    expect(last.xp_awarded).toBeUndefined();
    const [row] = await q<{ status: string; content: string }>(
      sql`select status, content from chat_messages where id = ${failing.messageId}`,
    );
    expect(row).toEqual({ status: 'completed', content: words(200).join('') });
    expect(await q(sql`select 1 from hook_awards where message_id = ${failing.messageId}`)).toEqual([]);
  });

  it('calls the hook with the final status of a stopped reply', async () => {
    fake.setScript({ tokens: words(400), delayMs: 20 });
    const a = await instance();
    const statuses: string[] = [];
    const turn = await a.app.infra.chat.turns.start(
      { userId: null },
      { message: 'fale bastante' },
      undefined,
      {
        async onFinalize(_tx, outcome) {
          statuses.push(outcome.status);
          return { xp_awarded: outcome.status === 'completed' ? 2 : 0 };
        },
      },
    );
    const streaming = streamRequest(a.base, `/api/v1/chat/stream/${turn.messageId}`, {
      method: 'GET',
      onEvent: (e) => {
        if (e.data.type === 'chunk' && statuses.length === 0 && !stopping) {
          stopping = fetch(`${a.base}/api/v1/chat/messages/${turn.messageId}/stop`, { method: 'POST' });
        }
      },
    });
    let stopping: Promise<Response> | undefined;
    const events = (await streaming).events;
    expect((await stopping!).status).toBe(200);
    expect(statuses).toEqual(['stopped']);
    expect(events.at(-1)!.data).toMatchObject({ type: 'complete', finish_reason: 'stopped', xp_awarded: 0 });
  });
});
