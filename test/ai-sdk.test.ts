// The stock AI SDK client (Chat + DefaultChatTransport) against the real server (AI-SDK.md).
import { Chat } from '@ai-sdk/react';
import { DefaultChatTransport, type UIMessage } from 'ai';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { createRedis } from '../src/plugins/redis.js';
import { createTestApp } from './support/app.js';
import { backends, createTestDb, createTestRedis, silentLogger, type TestDb } from './support/backends.js';
import { DEFAULT_TOKENS, type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { signHS256 } from './support/jwt.js';
import { streamRequest } from './support/sse.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const SECRET = 'test-app-secret-0123456789abcdef';
let tdb: TestDb;
const redis = createTestRedis();
// Same Redis server and prefix, its own connections: what a second instance would have.
const sharedRedis = redis ? createRedis(backends().redisUrl!, redis.prefix, silentLogger()) : null;
let fake: FakeModel;
const apps: FastifyInstance[] = [];
const proxies: TcpProxy[] = [];
let base: string;
/** A second instance over the same database and Redis when tests run on shared services. */
let other: string;

async function instance(r = redis) {
  const app = await createTestApp({
    db: tdb.handle,
    redis: r,
    model: fakeProvider(fake),
    env: { JWT_SECRET: SECRET },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  apps.push(app);
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

const words = (n: number) => Array.from({ length: n }, (_, i) => `palavra${i}${i % 7 === 6 ? '\n' : ' '}`);
const auth = async (sub: string) => ({ authorization: `Bearer ${await signHS256(SECRET, { sub })}` });

function newChat(
  api: string,
  id: string,
  opts: { headers?: Record<string, string>; messages?: UIMessage[] } = {},
) {
  return new Chat({
    id,
    messages: opts.messages,
    transport: new DefaultChatTransport({ api: `${api}/api/v1/chat/ui`, headers: opts.headers }),
  });
}
const textOf = (m: UIMessage | undefined) =>
  (m?.parts ?? [])
    .filter((p) => p.type === 'text')
    .map((p) => (p as { text: string }).text)
    .join('');
const assistants = (chat: Chat<UIMessage>) => chat.messages.filter((m) => m.role === 'assistant');

async function q<T>(query: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await tdb.handle.db.execute(query));
}
interface Row {
  id: string;
  role: string;
  content: string;
  status: string;
}
const rowsOfSession = (sessionId: string) =>
  q<Row>(
    sql`select id, role, content, status from chat_messages where session_id = ${sessionId} order by seq`,
  );
const rowOf = async (id: string) =>
  (await q<Row>(sql`select id, role, content, status from chat_messages where id = ${id}`))[0]!;
const counts = async () =>
  (
    await q<{ s: number; m: number }>(
      sql`select (select count(*)::int from chat_sessions) as s, (select count(*)::int from chat_messages) as m`,
    )
  )[0]!;

async function waitFor<T>(
  probe: () => T | Promise<T>,
  what: string,
  ms = 10_000,
): Promise<Exclude<T, false | null | undefined>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v as Exclude<T, false | null | undefined>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
  base = await instance();
  other = sharedRedis ? await instance(sharedRedis) : base;
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  for (const a of apps) await a.close();
  await fake.close();
  await redis?.close();
  await sharedRedis?.close();
  await tdb.drop();
});

describe('a turn with the stock client', () => {
  it('round trip: the UI message is the stored reply, under the stored id', async () => {
    fake.setScript({});
    const chat = newChat(base, 'ui-round-trip');
    await chat.sendMessage({ text: 'Olá, tudo bem?' });
    expect(chat.error).toBeUndefined();
    expect(chat.status).toBe('ready');
    const rows = await rowsOfSession('ui-round-trip');
    expect(rows.map((r) => [r.role, r.status])).toEqual([
      ['user', 'completed'],
      ['assistant', 'completed'],
    ]);
    expect(rows[0]!.content).toBe('Olá, tudo bem?');
    const [user, assistant] = chat.messages;
    expect(user!.role).toBe('user');
    expect(assistant!.id).toBe(rows[1]!.id);
    expect(textOf(assistant)).toBe(rows[1]!.content);
    expect(rows[1]!.content).toBe(DEFAULT_TOKENS.join(''));
    expect(assistant!.metadata).toMatchObject({
      session_id: 'ui-round-trip',
      user_message_id: rows[0]!.id,
      agent_id: 'abaporu',
      usage: { estimated: false },
    });
    expect(assistant!.parts.find((p) => p.type === 'data-agent')).toMatchObject({
      data: { agent_id: 'abaporu' },
    });
    // The history route serves the same ids, so a reloaded message and a streamed one are one message.
    const history = (await (await fetch(`${base}/api/v1/chat/history/ui-round-trip`)).json()) as {
      messages: Array<{ id: string; content: string }>;
    };
    expect(history.messages.map((m) => m.id)).toEqual(rows.map((r) => r.id));
  });

  it('two turns build the history the model sees; the agent comes from the transport body', async () => {
    const chat = new Chat({
      id: 'ui-two-turns',
      transport: new DefaultChatTransport({ api: `${base}/api/v1/chat/ui`, body: { agent_id: 'niemeyer' } }),
    });
    fake.setScript({ tokens: ['Primeira ', 'resposta.'] });
    await chat.sendMessage({ text: 'primeira pergunta' });
    fake.setScript({ tokens: ['Segunda ', 'resposta.'] });
    await chat.sendMessage({ text: 'segunda pergunta' });
    expect(chat.messages.map((m) => [m.role, textOf(m)])).toEqual([
      ['user', 'primeira pergunta'],
      ['assistant', 'Primeira resposta.'],
      ['user', 'segunda pergunta'],
      ['assistant', 'Segunda resposta.'],
    ]);
    const prompt = fake.requests.at(-1)!.body.messages!;
    expect(prompt).toContainEqual({ role: 'user', content: 'primeira pergunta' });
    expect(prompt).toContainEqual({ role: 'assistant', content: 'Primeira resposta.' });
    // The alias the client asked for is echoed, as on the native stream.
    expect(assistants(chat)[1]!.parts.find((p) => p.type === 'data-agent')).toMatchObject({
      data: { agent_id: 'niemeyer', agent_name: 'Oscar Niemeyer' },
    });
    const rows = await rowsOfSession('ui-two-turns');
    expect(rows.map((r) => r.id)).toEqual(chat.messages.map((m, i) => (i % 2 ? m.id : rows[i]!.id)));
  });

  it('a native turn and an AI SDK turn in one session see each other', async () => {
    const id = 'ui-interop';
    fake.setScript({ tokens: ['Resposta ', 'nativa.'] });
    const native = await streamRequest(base, '/api/v1/chat/stream', {
      body: { message: 'pergunta nativa', session_id: id },
    });
    expect(native.events.at(-1)!.data.type).toBe('complete');

    fake.setScript({ tokens: ['Resposta ', 'UI.'] });
    const chat = newChat(base, id);
    await chat.sendMessage({ text: 'pergunta UI' });
    expect(fake.requests.at(-1)!.body.messages).toContainEqual({
      role: 'assistant',
      content: 'Resposta nativa.',
    });

    fake.setScript({ tokens: ['De ', 'novo.'] });
    await streamRequest(base, '/api/v1/chat/stream', { body: { message: 'e agora?', session_id: id } });
    const prompt = fake.requests.at(-1)!.body.messages!;
    expect(prompt).toContainEqual({ role: 'user', content: 'pergunta UI' });
    expect(prompt).toContainEqual({ role: 'assistant', content: 'Resposta UI.' });
    const rows = await rowsOfSession(id);
    expect(rows.map((r) => r.content)).toEqual([
      'pergunta nativa',
      'Resposta nativa.',
      'pergunta UI',
      'Resposta UI.',
      'e agora?',
      'De novo.',
    ]);
  });

  it('accepts the persistence guide body that sends only the last message', async () => {
    fake.setScript({});
    const chat = new Chat({
      id: 'ui-last-only',
      transport: new DefaultChatTransport({
        api: `${base}/api/v1/chat/ui`,
        prepareSendMessagesRequest: ({ id, messages }) => ({ body: { id, message: messages.at(-1) } }),
      }),
    });
    await chat.sendMessage({ text: 'só a última' });
    expect(chat.status).toBe('ready');
    const rows = await rowsOfSession('ui-last-only');
    expect(rows.map((r) => r.content)).toEqual(['só a última', DEFAULT_TOKENS.join('')]);
    expect(assistants(chat)[0]!.id).toBe(rows[1]!.id);
  });
});

describe('auth and ownership', () => {
  it('binds the chat to the bearer user; another user and an anonymous caller get 404 with nothing written', async () => {
    fake.setScript({});
    const id = 'ui-owned';
    const owner = newChat(base, id, { headers: await auth('user-a') });
    await owner.sendMessage({ text: 'meu chat' });
    expect(owner.status).toBe('ready');
    const [session] = await q<{ user_id: string }>(sql`select user_id from chat_sessions where id = ${id}`);
    expect(session!.user_id).toBe('user-a');

    for (const headers of [await auth('user-b'), undefined]) {
      const before = await counts();
      const intruder = newChat(base, id, { headers });
      await intruder.sendMessage({ text: 'deixa eu ver' });
      expect(intruder.status).toBe('error');
      expect((intruder.error as { statusCode?: number }).statusCode).toBe(404);
      expect(intruder.error!.message).toContain('SESSION_NOT_FOUND');
      expect(await counts()).toEqual(before);
    }
  });

  it('an invalid token is a 401, never an anonymous turn', async () => {
    const before = await counts();
    const chat = newChat(base, 'ui-bad-token', { headers: { authorization: 'Bearer nope.nope.nope' } });
    await chat.sendMessage({ text: 'oi' });
    expect((chat.error as { statusCode?: number }).statusCode).toBe(401);
    expect(await counts()).toEqual(before);
  });
});

describe('stop', () => {
  it('chat.stop() is a disconnect: the client keeps its partial, the server finishes and stores the reply', async () => {
    const tokens = words(60);
    fake.setScript({ tokens, delayMs: 15 });
    const chat = newChat(base, 'ui-client-stop');
    const sending = chat.sendMessage({ text: 'fale bastante' });
    await waitFor(() => textOf(assistants(chat)[0]).length > 0, 'the first text');
    await chat.stop();
    await sending;
    expect(chat.status).toBe('ready');
    expect(chat.error).toBeUndefined();
    const partial = textOf(assistants(chat)[0]);
    const id = assistants(chat)[0]!.id;
    const row = await waitFor(async () => {
      const r = await rowOf(id);
      return r.status !== 'streaming' && r;
    }, 'the stored reply');
    expect(row.status).toBe('completed');
    expect(row.content).toBe(tokens.join(''));
    expect(row.content.startsWith(partial)).toBe(true);
    expect(partial.length).toBeLessThan(row.content.length);
  });

  it('the native stop route ends the open stream by itself with abort; the row is stopped; resume is 204', async () => {
    const tokens = words(80);
    fake.setScript({ tokens, delayMs: 15 });
    const chat = newChat(base, 'ui-route-stop');
    const sending = chat.sendMessage({ text: 'fale bastante' });
    await waitFor(() => textOf(assistants(chat)[0]).length > 0, 'the first text');
    const messageId = assistants(chat)[0]!.id;
    const res = await fetch(`${base}/api/v1/chat/messages/${messageId}/stop`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('stopped');
    // No chat.stop(): the stream ends by itself (abort, [DONE]) and the chat is ready again.
    await sending;
    expect(chat.error).toBeUndefined();
    expect(chat.status).toBe('ready');
    const row = await rowOf(messageId);
    expect(row.status).toBe('stopped');
    expect(textOf(assistants(chat)[0])).toBe(row.content);
    expect(tokens.join('').startsWith(row.content)).toBe(true);
    expect(row.content.length).toBeLessThan(tokens.join('').length);
    const resume = await fetch(`${base}/api/v1/chat/ui/ui-route-stop/stream`);
    expect(resume.status).toBe(204);
  });
});

describe('resume', () => {
  it('after a dropped connection: a full replay under the same id shows the whole text exactly once', async () => {
    const tokens = words(70);
    fake.setScript({ tokens, delayMs: 15 });
    const { port } = new URL(base);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(port) });
    proxies.push(proxy);
    const chat = newChat(proxy.url, 'ui-drop');
    const sending = chat.sendMessage({ text: 'conte uma história' });
    await waitFor(() => textOf(assistants(chat)[0]).length > 20, 'some text');
    proxy.cut();
    await sending;
    expect(chat.status).toBe('error');
    const id = assistants(chat)[0]!.id;
    expect((await rowOf(id)).status).toBe('streaming');

    await chat.resumeStream();
    expect(chat.error).toBeUndefined();
    expect(chat.status).toBe('ready');
    const row = await rowOf(id);
    expect(row.status).toBe('completed');
    expect(chat.messages).toHaveLength(2);
    expect(assistants(chat)).toHaveLength(1);
    expect(assistants(chat)[0]!.id).toBe(id);
    expect(textOf(assistants(chat)[0])).toBe(row.content);
    expect(row.content).toBe(tokens.join(''));
  });

  it('after a reload on another instance: history plus resumeStream show the reply once, then follow it live', async () => {
    const tokens = words(70);
    fake.setScript({ tokens, delayMs: 15 });
    const first = newChat(base, 'ui-reload');
    const sending = first.sendMessage({ text: 'conte outra história' });
    await waitFor(() => textOf(assistants(first)[0]).length > 20, 'some text');
    const id = assistants(first)[0]!.id;
    // The page goes away (its fetch with it) and comes back: messages from history, then resume.
    await first.stop();
    await sending;
    const history = (await (await fetch(`${other}/api/v1/chat/history/ui-reload`)).json()) as {
      messages: Array<{ id: string; role: 'user' | 'assistant'; content: string; status: string }>;
    };
    expect(history.messages.at(-1)).toMatchObject({ id, status: 'streaming' });
    const reloaded = newChat(other, 'ui-reload', {
      messages: history.messages.map((m) => ({
        id: m.id,
        role: m.role,
        parts: [{ type: 'text', text: m.content }],
      })),
    });
    await reloaded.resumeStream();
    expect(reloaded.error).toBeUndefined();
    const row = await rowOf(id);
    expect(row.status).toBe('completed');
    expect(reloaded.messages.map((m) => m.id)).toEqual(history.messages.map((m) => m.id));
    expect(textOf(reloaded.messages[1])).toBe(tokens.join(''));

    // A reload that did not load history first gets the reply as one new message.
    fake.setScript({ tokens, delayMs: 15 });
    const again = newChat(base, 'ui-reload-bare');
    const s2 = again.sendMessage({ text: 'e mais uma' });
    await waitFor(() => textOf(assistants(again)[0]).length > 0, 'some text');
    await again.stop();
    await s2;
    const bare = newChat(other, 'ui-reload-bare');
    await bare.resumeStream();
    expect(bare.messages).toHaveLength(1);
    expect(bare.messages[0]!.id).toBe(assistants(again)[0]!.id);
    expect(textOf(bare.messages[0])).toBe(tokens.join(''));
  });

  it('answers 204 when nothing is active: finished, new, malformed or foreign chats', async () => {
    fake.setScript({});
    const done = newChat(base, 'ui-finished');
    await done.sendMessage({ text: 'oi' });
    for (const chatId of ['ui-finished', 'ui-never-existed', 'has%20space']) {
      const res = await fetch(`${base}/api/v1/chat/ui/${chatId}/stream`);
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
    }
    const mounted = newChat(base, 'ui-finished');
    await mounted.resumeStream();
    expect(mounted.status).toBe('ready');
    expect(mounted.error).toBeUndefined();
    expect(mounted.messages).toEqual([]);

    // Someone else's running chat: 204 (its existence is not revealed); its owner gets the stream.
    fake.setScript({ tokens: words(30), delayMs: 15 });
    const owner = newChat(base, 'ui-foreign', { headers: await auth('user-c') });
    const sending = owner.sendMessage({ text: 'meu' });
    await waitFor(() => assistants(owner).length > 0, 'the reply to start');
    for (const headers of [await auth('user-d'), {}]) {
      const res = await fetch(`${base}/api/v1/chat/ui/ui-foreign/stream`, { headers });
      expect(res.status).toBe(204);
    }
    const mine = await fetch(`${base}/api/v1/chat/ui/ui-foreign/stream`, { headers: await auth('user-c') });
    expect(mine.status).toBe(200);
    await mine.body?.cancel();
    await sending;
  });
});

describe('failures', () => {
  it('a model failure ends in an error chunk the client surfaces, and a failed row', async () => {
    fake.setScript({ failTimes: 5, failStatus: 400 });
    const chat = newChat(base, 'ui-model-fails');
    await chat.sendMessage({ text: 'oi' });
    expect(chat.status).toBe('error');
    expect(chat.error!.message).toBe(
      'Não foi possível concluir a resposta agora. Tente novamente em instantes.',
    );
    const rows = await rowsOfSession('ui-model-fails');
    expect(rows.map((r) => r.status)).toEqual(['completed', 'failed']);
  });

  it('a body the server rejects surfaces as the status code, with nothing written', async () => {
    const before = await counts();
    const long = newChat(base, 'ui-too-long');
    await long.sendMessage({ text: 'a'.repeat(8001) });
    expect((long.error as { statusCode?: number }).statusCode).toBe(413);
    const regen = newChat(base, 'ui-regen', {
      messages: [
        { id: 'u1', role: 'user', parts: [{ type: 'text', text: 'oi' }] },
        { id: 'a1', role: 'assistant', parts: [{ type: 'text', text: 'olá' }] },
      ],
    });
    await regen.regenerate();
    expect((regen.error as { statusCode?: number }).statusCode).toBe(422);
    expect(regen.error!.message).toContain('UNSUPPORTED_TRIGGER');
    expect(await counts()).toEqual(before);
  });
});
