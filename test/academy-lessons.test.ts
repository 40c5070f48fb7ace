import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  A,
  type Client,
  counts,
  enrol,
  expectLedgerIntact,
  q,
  SECRET,
  startAcademy,
} from './support/academy.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { signHS256 } from './support/jwt.js';
import { type StreamResult, streamRequest } from './support/sse.js';

let tdb: TestDb;
const redis = createTestRedis();
let fake: FakeModel;
let c: Client; // a real (fake-served) model, so the prompt is observable
let offline: Client; // the offline agent: fast, for the load test

beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
  c = await startAcademy(tdb, redis, { model: fakeProvider(fake) });
  offline = await startAcademy(tdb, redis);
});
afterAll(async () => {
  await c.app.close();
  await offline.app.close();
  await fake.close();
  await redis?.close();
  await tdb.drop();
});

const bearer = async (sub: string) => ({ authorization: `Bearer ${await signHS256(SECRET, { sub })}` });

function lesson(
  client: Client,
  sub: string,
  id: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return bearer(sub).then((h) =>
    streamRequest(client.base, `${A}/conversations/${id}/messages/stream`, {
      body,
      headers: { ...h, ...headers },
    }),
  );
}

const chunks = (r: StreamResult) =>
  r.events
    .filter((e) => e.data.type === 'chunk')
    .map((e) => e.data.content as string)
    .join('');

/** Waits (with a deadline) until `check` holds; for state that another request changes. */
async function until(check: () => Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a lesson is a chat turn with the teacher', () => {
  it('enrol → start → two streamed messages → complete with rating 5: ledger, total, level, rank and badges', async () => {
    fake.setScript({ tokens: ['Vamos ', 'falar ', 'de ', 'índices.'] });
    await enrol(c, 'aluna');
    const conv = (
      await c.call('aluna', 'POST', `${A}/conversations`, {
        agent_name: 'niemeyer',
        track: 'frontend',
        topic: 'Componentes acessíveis',
        difficulty: 'medium',
      })
    ).json;
    expect(conv.agent_name).toBe('oscar_niemeyer');
    const asked = fake.requests.length;

    const first = await lesson(c, 'aluna', conv.id, { message: 'Como começo?' });
    expect(first.status).toBe(200);
    const types = first.events.map((e) => e.data.type);
    expect(types[0]).toBe('start');
    expect(types).toContain('agent_selected');
    expect(types.filter((t) => t === 'complete')).toHaveLength(1);
    expect(types.at(-1)).toBe('complete');
    expect(types).not.toContain('searching');
    expect(first.events[0]!.data.session_id).toBe(conv.session_id);
    const selected = first.events.find((e) => e.data.type === 'agent_selected')!.data;
    expect(selected).toMatchObject({ agent_id: 'oscar_niemeyer', agent_name: 'Oscar Niemeyer' });
    const complete = first.events.at(-1)!.data;
    expect(complete).toMatchObject({
      session_id: conv.session_id,
      message_id: first.events[0]!.data.message_id,
      conversation_id: conv.id,
      xp_awarded: 2,
      badges_earned: [],
    });
    expect(chunks(first)).toBe('Vamos falar de índices.');
    // The award is committed before `complete` is written.
    expect((await c.call('aluna', 'GET', `${A}/users/me`)).json.progress.total_xp).toBe(32);

    // The model saw the teacher's persona plus the lesson.
    const system = fake.requests[asked]!.body.messages![0]!;
    expect(system.role).toBe('system');
    expect(system.content).toContain('Oscar Niemeyer');
    expect(system.content).toContain('frontend');
    expect(system.content).toContain('medium');
    expect(system.content).toContain('Componentes acessíveis');

    // An investigation-sounding question still goes to the teacher: no routing, no contract search.
    const second = await lesson(c, 'aluna', conv.id, { message: 'investigue contratos de merenda' });
    expect(second.events.find((e) => e.data.type === 'agent_selected')!.data.agent_id).toBe('oscar_niemeyer');
    expect(second.events.map((e) => e.data.type)).not.toContain('contract');
    expect(second.events.at(-1)!.data).toMatchObject({ conversation_id: conv.id, xp_awarded: 2 });
    // The earlier turn is the history of this one.
    const prompt = fake.requests.at(-1)!.body.messages!;
    expect(prompt.map((m) => m.content)).toContain('Como começo?');
    expect(prompt.map((m) => m.content)).toContain('Vamos falar de índices.');

    const done = await c.call('aluna', 'POST', `${A}/conversations/${conv.id}/complete`, { rating: 5 });
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({
      status: 'completed',
      xp_awarded: 50,
      xp_earned: 59,
      messages_count: 4,
    });

    const rows = await expectLedgerIntact(tdb, c, 'aluna');
    expect(rows.map((r) => [r.source_type, r.amount, r.balance_after])).toEqual([
      ['conversation_started', 5, 5],
      ['badge', 25, 30],
      ['conversation_message', 2, 32],
      ['conversation_message', 2, 34],
      ['conversation_completed', 50, 84],
    ]);
    expect(rows[2]!.source_id).toBe(first.events[0]!.data.user_message_id);
    expect(rows[3]!.source_id).toBe(second.events[0]!.data.user_message_id);
    const me = (await c.call('aluna', 'GET', `${A}/users/me`)).json;
    expect(me.progress).toMatchObject({
      total_xp: 84,
      current_level: 1,
      current_rank: 'novato',
      xp_to_next_level: 16,
      progress_percentage: 84,
    });
    expect(me.badges.map((b: { code: string }) => b.code)).toEqual(['first_conversation']);

    const messages = (await c.call('aluna', 'GET', `${A}/conversations/${conv.id}/messages`)).json;
    expect(messages.map((m: Record<string, unknown>) => [m.role, m.xp_awarded, m.status])).toEqual([
      ['user', 2, 'completed'],
      ['assistant', 0, 'completed'],
      ['user', 2, 'completed'],
      ['assistant', 0, 'completed'],
    ]);
    expect(messages[1].content).toBe('Vamos falar de índices.');
    expect(
      (await c.call('aluna', 'GET', `${A}/conversations/${conv.id}/messages?limit=2`)).json,
    ).toHaveLength(2);

    // Completing again, or messaging a completed lesson, is 409 and pays nothing.
    const before = await counts(tdb);
    const again = await c.call('aluna', 'POST', `${A}/conversations/${conv.id}/complete`, { rating: 5 });
    expect(again.status).toBe(409);
    const more = await lesson(c, 'aluna', conv.id, { message: 'mais uma' });
    expect(more.status).toBe(409);
    expect(more.json.error.code).toBe('CONVERSATION_COMPLETED');
    expect(await counts(tdb)).toEqual(before);
  });

  it('runs the same turn as JSON, and a replay or a retry never pays again', async () => {
    fake.setScript({ tokens: ['Resposta ', 'em ', 'JSON.'] });
    await enrol(c, 'beto');
    const conv = (await c.call('beto', 'POST', `${A}/conversations`, { agent_name: 'zumbi', track: 'ia' }))
      .json;
    const r = await c.call('beto', 'POST', `${A}/conversations/${conv.id}/messages`, { message: 'Olá' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      session_id: conv.session_id,
      conversation_id: conv.id,
      role: 'assistant',
      content: 'Resposta em JSON.',
      status: 'completed',
      agent_id: 'zumbi',
      xp_awarded: 2,
      badges_earned: [],
    });
    expect(r.json.id).toBe(r.json.message_id);
    expect(Date.parse(r.json.timestamp)).not.toBeNaN();
    const [user] = await q<{ role: string; content: string }>(
      tdb,
      sql`select role, content from chat_messages where id = ${r.json.user_message_id}`,
    );
    expect(user).toEqual({ role: 'user', content: 'Olá' });

    const before = await counts(tdb);
    const replay = await streamRequest(c.base, `/api/v1/chat/stream/${r.json.message_id}`, {
      headers: await bearer('beto'),
    });
    expect(replay.events.at(-1)!.data).toMatchObject({
      type: 'complete',
      conversation_id: conv.id,
      xp_awarded: 2,
    });
    expect(chunks(replay)).toBe('Resposta em JSON.');
    // Another instance has no live log of this reply: it rebuilds the stream (from Redis or the row).
    const rebuilt = await streamRequest(offline.base, `/api/v1/chat/stream/${r.json.message_id}`, {
      headers: await bearer('beto'),
    });
    expect(rebuilt.events.at(-1)!.data).toMatchObject({
      type: 'complete',
      conversation_id: conv.id,
      xp_awarded: 2,
      badges_earned: [],
    });
    const listed = (await c.call('beto', 'GET', `${A}/conversations/${conv.id}/messages`)).json;
    expect(listed[1].metadata).not.toHaveProperty('complete_extra');

    const key = { 'idempotency-key': 'lesson-retry-1' };
    const once = await lesson(c, 'beto', conv.id, { message: 'de novo' }, key);
    expect(once.events.at(-1)!.data.xp_awarded).toBe(2);
    const retry = await lesson(c, 'beto', conv.id, { message: 'de novo' }, key);
    expect(retry.events[0]!.data.message_id).toBe(once.events[0]!.data.message_id);
    const after = await counts(tdb);
    expect(after.ledger).toBe(before.ledger + 1);
    expect(after.messages).toBe(before.messages + 2);
    await expectLedgerIntact(tdb, c, 'beto');
  });

  it('pays nothing for a stopped or failed reply, nor for turns sent through /chat/stream', async () => {
    await enrol(c, 'cida');
    const conv = (
      await c.call('cida', 'POST', `${A}/conversations`, { agent_name: 'machado', track: 'backend' })
    ).json;
    const ledger0 = (await counts(tdb)).ledger;

    fake.setScript({ tokens: Array.from({ length: 400 }, (_, i) => `p${i} `), delayMs: 10 });
    let messageId = '';
    const streaming = lesson(c, 'cida', conv.id, { message: 'longa' }).then((r) => r);
    await until(async () => {
      const [row] = await q<{ id: string; content: string }>(
        tdb,
        sql`select id, content from chat_messages m where m.session_id = ${conv.session_id}
            and m.role = 'assistant' and m.status = 'streaming'`,
      );
      messageId = row?.id ?? '';
      return messageId !== '';
    }, 'the reply to start');
    const stop = await fetch(`${c.base}/api/v1/chat/messages/${messageId}/stop`, {
      method: 'POST',
      headers: await bearer('cida'),
    });
    expect(stop.status).toBe(200);
    const stopped = await streaming;
    expect(stopped.events.at(-1)!.data).toMatchObject({
      type: 'complete',
      finish_reason: 'stopped',
      conversation_id: conv.id,
      xp_awarded: 0,
    });

    fake.setScript({ failTimes: 10, failStatus: 400 });
    const failed = await lesson(c, 'cida', conv.id, { message: 'vai falhar' });
    expect(failed.events.at(-1)!.data.type).toBe('error');

    fake.setScript({ tokens: ['via ', 'chat.'] });
    const viaChat = await streamRequest(c.base, '/api/v1/chat/stream', {
      body: { message: 'pelo chat', session_id: conv.session_id },
      headers: await bearer('cida'),
    });
    expect(viaChat.events.at(-1)!.data.type).toBe('complete');
    expect(viaChat.events.at(-1)!.data).not.toHaveProperty('xp_awarded');

    expect((await counts(tdb)).ledger).toBe(ledger0);
    const messages = (await c.call('cida', 'GET', `${A}/conversations/${conv.id}/messages`)).json;
    expect(
      messages
        .filter((m: { role: string }) => m.role === 'user')
        .map((m: { xp_awarded: number }) => m.xp_awarded),
    ).toEqual([0, 0, 0]);
    await expectLedgerIntact(tdb, c, 'cida');
  });

  it('pays a reply still running when its conversation completes, once it completes', async () => {
    await enrol(c, 'duda');
    const conv = (await c.call('duda', 'POST', `${A}/conversations`, { agent_name: 'anita', track: 'ia' }))
      .json;
    fake.setScript({ tokens: Array.from({ length: 30 }, (_, i) => `t${i} `), delayMs: 20 });
    const streaming = lesson(c, 'duda', conv.id, { message: 'devagar' });
    await until(
      async () =>
        (
          await q(
            tdb,
            sql`select 1 from chat_messages where session_id = ${conv.session_id} and status = 'streaming'`,
          )
        ).length > 0,
      'the reply to start',
    );
    const done = await c.call('duda', 'POST', `${A}/conversations/${conv.id}/complete`, {});
    expect(done.json.xp_awarded).toBe(20);
    const r = await streaming;
    expect(r.events.at(-1)!.data).toMatchObject({ type: 'complete', xp_awarded: 2 });
    const rows = await expectLedgerIntact(tdb, c, 'duda');
    expect(rows.map((x) => x.source_type)).toEqual([
      'conversation_started',
      'badge',
      'conversation_completed',
      'conversation_message',
    ]);
  });

  it('keeps another user out of the lesson’s reply on the chat routes', async () => {
    fake.setScript({ tokens: ['só ', 'minha.'] });
    await enrol(c, 'eli');
    const conv = (
      await c.call('eli', 'POST', `${A}/conversations`, { agent_name: 'dandara', track: 'frontend' })
    ).json;
    const r = await lesson(c, 'eli', conv.id, { message: 'oi' });
    const id = r.events[0]!.data.message_id as string;
    for (const h of [{}, await bearer('outra')]) {
      expect((await fetch(`${c.base}/api/v1/chat/stream/${id}`, { headers: h })).status).toBe(404);
      expect(
        (await fetch(`${c.base}/api/v1/chat/messages/${id}/stop`, { method: 'POST', headers: h })).status,
      ).toBe(404);
    }
  });

  it('stores a lesson message’s metadata on its user message, as the conversation lists it', async () => {
    await enrol(offline, 'dora');
    const conv = (
      await offline.call('dora', 'POST', `${A}/conversations`, { agent_name: 'zumbi', track: 'ia' })
    ).json;
    const metadata = { source: 'editor', exercise: { id: 'ex-3', attempt: 2 } };
    const r = await offline.call('dora', 'POST', `${A}/conversations/${conv.id}/messages`, {
      message: 'o que é um aditivo contratual?',
      metadata,
    });
    expect(r.status).toBe(200);
    const listed = await offline.call('dora', 'GET', `${A}/conversations/${conv.id}/messages`);
    const user = listed.json.find((m: { role: string }) => m.role === 'user');
    expect(user.metadata).toEqual(metadata);
    const stored = await q<{ metadata: unknown }>(
      tdb,
      sql`select metadata from chat_messages where id = ${user.id}`,
    );
    expect(stored[0]!.metadata).toEqual(metadata);
  });

  it('rejects bad lesson input with a 4xx and writes nothing', async () => {
    await enrol(c, 'fabio');
    const conv = (await c.call('fabio', 'POST', `${A}/conversations`, { agent_name: 'zumbi', track: 'ia' }))
      .json;
    const before = await counts(tdb);
    for (const [body, status] of [
      [{}, 422],
      [{ message: '   ' }, 422],
      [{ message: 'x'.repeat(5001) }, 422],
      [{ message: 'oi', metadata: { big: 'x'.repeat(17 * 1024) } }, 422],
      [{ message: 'oi', metadata: 'texto' }, 422],
      ['{"message":', 400],
    ] as Array<[unknown, number]>) {
      const r = await c.call('fabio', 'POST', `${A}/conversations/${conv.id}/messages`, body);
      expect(r.status, JSON.stringify(body).slice(0, 40)).toBe(status);
    }
    expect(await counts(tdb)).toEqual(before);
  });
});

describe('a lesson counts against the chat rate limit', () => {
  it('the third lesson message in a minute is 429 with Retry-After, writes nothing and pays nothing', async () => {
    const limited = await startAcademy(tdb, redis, { env: { RATE_LIMIT_CHAT_PER_MINUTE: '2' } });
    try {
      await enrol(limited, 'rita');
      const conv = (
        await limited.call('rita', 'POST', `${A}/conversations`, { agent_name: 'zumbi', track: 'ia' })
      ).json;
      const first = await limited.call('rita', 'POST', `${A}/conversations/${conv.id}/messages`, {
        message: 'o que é um pregão?',
      });
      expect(first.status).toBe(200);
      expect(first.headers.get('x-ratelimit-remaining')).toBe('1');
      const second = await lesson(limited, 'rita', conv.id, { message: 'e uma dispensa?' });
      expect(second.status).toBe(200);
      expect(second.events.at(-1)?.data.type).toBe('complete');
      const before = await counts(tdb);
      for (const send of [
        () => limited.call('rita', 'POST', `${A}/conversations/${conv.id}/messages`, { message: 'e agora?' }),
        () => lesson(limited, 'rita', conv.id, { message: 'e agora?' }),
      ]) {
        const r = await send();
        expect(r.status).toBe(429);
        const retryAfter =
          r.headers instanceof Headers ? r.headers.get('retry-after') : r.headers['retry-after'];
        expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      }
      // The limit is the caller's, across routes: a chat turn of the same user is refused too.
      const chat = await streamRequest(limited.base, '/api/v1/chat/stream', {
        body: { message: 'oi' },
        headers: await bearer('rita'),
      });
      expect(chat.status).toBe(429);
      expect(await counts(tdb)).toEqual(before);
    } finally {
      await limited.app.close();
    }
  });
});

describe('the ledger under load', () => {
  it('20 parallel messages in one conversation: every reply paid once, the chain intact, no 5xx', async () => {
    await enrol(offline, 'carga');
    const conv = (
      await offline.call('carga', 'POST', `${A}/conversations`, { agent_name: 'senna', track: 'devops' })
    ).json;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => lesson(offline, 'carga', conv.id, { message: `pergunta ${i}` })),
    );
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.events.at(-1)!.data).toMatchObject({
        type: 'complete',
        conversation_id: conv.id,
        xp_awarded: 2,
      });
    }
    const rows = await expectLedgerIntact(tdb, offline, 'carga');
    expect(rows.filter((r) => r.source_type === 'conversation_message')).toHaveLength(20);
    expect(rows.at(-1)!.balance_after).toBe(5 + 25 + 40);
    const view = (await offline.call('carga', 'GET', `${A}/conversations/${conv.id}`)).json;
    expect(view).toMatchObject({ messages_count: 40, xp_earned: 45 });
  });
});
