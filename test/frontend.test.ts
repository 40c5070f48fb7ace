// The real frontend's requests, headers included: the error envelope, axios's empty bodies, hostile input, Maritaca mode.
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { dbHelpers, expectEnvelope, frontendClient, ORIGIN } from './support/frontend.js';

const SECRET = 'frontend-test-secret-0123456789abcdef';
const INV = '/api/v1/investigations';

let tdb: TestDb;
let app: FastifyInstance;
let fake: FakeModel;
const redis = createTestRedis();

beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
  app = await createTestApp({
    db: tdb.handle,
    redis,
    model: fakeProvider(fake, { model: 'operator-model' }),
    env: { JWT_SECRET: SECRET, LLM_ALLOWED_MODELS: 'sabia-4, sabiazinho-4', CORS_ORIGINS: ORIGIN },
  });
});
afterAll(async () => {
  await app?.close();
  await fake?.close();
  await redis?.close();
  await tdb?.drop();
});

const axios = frontendClient(() => app, SECRET);
const { q, count } = dbHelpers(() => tdb.handle);

describe('error envelope', () => {
  it('carries a top-level Portuguese detail beside error.{code,message} and request_id', async () => {
    const r = await axios('GET', '/api/v1/chat/sessions/nope-session');
    const body = expectEnvelope(r, 404);
    expect(body.error.code).toBe('SESSION_NOT_FOUND');
    expect(body.detail).toBe('Conversa não encontrada.');
  });

  it('a validation error names the field in detail', async () => {
    const r = await axios('POST', '/api/v1/chat/message', { body: { message: '   ' } });
    const body = expectEnvelope(r, 422);
    expect(body.detail).toContain('message');
  });

  it('router errors (bad percent-encoding, over-long parameter) go through the envelope with CORS', async () => {
    for (const url of [
      '/api/v1/chat/sessions/%ZZ',
      '/api/v1/chat/sessions/abc%',
      '/api/v1/chat/history/%E0%A4%A',
    ]) {
      const r = await axios('GET', url);
      expect(r.statusCode, url).toBeGreaterThanOrEqual(400);
      expect(r.statusCode, url).toBeLessThan(500);
      expectEnvelope(r, r.statusCode);
      expect(r.headers['x-request-id']).toBe(r.json().request_id);
    }
    const long = await axios('GET', `/api/v1/chat/sessions/${'a'.repeat(600)}`);
    expect(expectEnvelope(long, 414).error.code).toBe('URI_TOO_LONG');
  });
});

describe('axios empty bodies', () => {
  it('a session id of 128 characters can be created, read, listed in history and deleted', async () => {
    const id = `session_${'x'.repeat(120)}`;
    expect(id).toHaveLength(128);
    const user = 'user-long-id';
    const turn = await axios('POST', '/api/v1/chat/message', {
      body: { message: 'Olá', session_id: id },
      user,
    });
    expect(turn.statusCode, turn.body).toBe(200);
    expect((await axios('GET', `/api/v1/chat/sessions/${id}`, { user })).statusCode).toBe(200);
    expect((await axios('GET', `/api/v1/chat/history/${id}`, { user })).json().messages).toHaveLength(2);
    const del = await axios('DELETE', `/api/v1/chat/sessions/${id}`, { user });
    expect(del.statusCode, del.body).toBe(204);
    const [row] = await q<{ deleted: boolean }>(
      sql`select deleted_at is not null as deleted from chat_sessions where id = ${id}`,
    );
    expect(row!.deleted).toBe(true);
    expect((await axios('POST', `/api/v1/chat/sessions/${id}/restore`, { user })).statusCode).toBe(200);
  });

  it('GET with JSON content type and no body is a read; a POST that needs a body names the field', async () => {
    expect((await axios('GET', '/api/v1/chat/sessions')).statusCode).toBe(200);
    expect((await axios('GET', '/api/v1/chat/agents')).statusCode).toBe(200);
    const before = await count('chat_messages');
    const r = await axios('POST', '/api/v1/chat/stream');
    const body = expectEnvelope(r, 422);
    expect(body.error.details).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'message' })]),
    );
    expect(await count('chat_messages')).toBe(before);
  });

  it('only a non-empty body that is not JSON is INVALID_JSON', async () => {
    const r = await app.inject({
      method: 'DELETE',
      url: '/api/v1/chat/sessions/abc',
      headers: { 'content-type': 'application/json', origin: ORIGIN },
      payload: '{not json',
    });
    expect(expectEnvelope(r, 400).error.code).toBe('INVALID_JSON');
  });
});

describe('hostile input is decided at validation', () => {
  it('NUL and lone surrogates in stored text are 422 and write nothing', async () => {
    const before = await Promise.all(['chat_sessions', 'chat_messages', 'investigations'].map(count));
    const bad: Array<[string, string, unknown]> = [
      ['POST', '/api/v1/chat/message', { message: 'a\u0000b' }],
      ['POST', '/api/v1/chat/message', { message: 'ok', context: { 'k\u0000': 1 } }],
      ['POST', '/api/v1/chat/message', { message: 'ok', context: { k: 'v\ud800' } }],
      ['POST', '/api/v1/chat/message', { message: 'lone \udc00 low' }],
      ['POST', `${INV}/`, { query: 'x\u0000' }],
      ['POST', `${INV}/public/create`, { query: 'ok', filters: { organization: 'min\u0000' } }],
      ['POST', `${INV}/public/create`, { query: 'ok', filters: { modalidade: '\ud83d' } }],
    ];
    for (const [method, url, body] of bad) {
      const r = await axios(method as 'POST', url, { body });
      expectEnvelope(r, 422);
    }
    expect(await Promise.all(['chat_sessions', 'chat_messages', 'investigations'].map(count))).toEqual(
      before,
    );
  });

  it('a rename with NUL is 422', async () => {
    const user = 'renamer';
    await axios('POST', '/api/v1/chat/message', { body: { message: 'oi', session_id: 'rename-me' }, user });
    const r = await axios('PATCH', '/api/v1/chat/sessions/rename-me', { body: { title: 'a\u0000' }, user });
    expectEnvelope(r, 422);
  });

  it('tampered session-list cursors are 422', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const cursor of [
      b64(['2024', 'x']),
      'Feb 30 2024',
      b64(['Feb 30 2024', 'x']),
      b64(['+275760-09-13T00:00:00.000Z', 'x']),
      b64(['2024-02-30T00:00:00.000Z', 'x']),
      b64([1, 2]),
    ]) {
      const r = await axios('GET', `/api/v1/chat/sessions?cursor=${encodeURIComponent(cursor)}`, {
        user: 'lister',
      });
      expectEnvelope(r, 422);
    }
  });

  it('a 36-character id that is not a UUID is 404 on stream and stop', async () => {
    const id = '-'.repeat(36);
    expect(expectEnvelope(await axios('GET', `/api/v1/chat/stream/${id}`), 404).error.code).toBe(
      'MESSAGE_NOT_FOUND',
    );
    expect(expectEnvelope(await axios('POST', `/api/v1/chat/messages/${id}/stop`), 404).error.code).toBe(
      'MESSAGE_NOT_FOUND',
    );
  });
});

describe('Maritaca mode (API.md §2.1)', () => {
  const maritaca = (body: unknown) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/chat/direct/maritaca',
      headers: { 'content-type': 'application/json', origin: ORIGIN },
      payload: JSON.stringify(body),
    });
  const body = (session_id: string, content: string, model = 'sabiazinho-4') => ({
    messages: [{ role: 'user', content }],
    model,
    temperature: 0.7,
    max_tokens: 2048,
    stream: false,
    session_id,
    context: { maritacaModel: model },
  });

  it('answers a turn in JSON, stores both sides, and the history is the next turn’s context', async () => {
    const sid = `session_${Date.now()}_abc1234`;
    const r = await maritaca(body(sid, 'Primeira pergunta'));
    expect(r.statusCode, r.body).toBe(200);
    const a = r.json();
    expect(a.content.length).toBeGreaterThan(0);
    expect(a.response).toBe(a.content);
    expect(a.message).toBe(a.content);
    expect(a.session_id).toBe(sid);
    expect(typeof a.message_id).toBe('string');
    expect(a.model).toBe('sabiazinho-4');
    expect(typeof a.finish_reason).toBe('string');
    expect(a.metadata).toMatchObject({ model: 'sabiazinho-4', agent_id: expect.any(String) });
    expect(fake.requests.at(-1)!.body.model).toBe('sabiazinho-4');

    await maritaca(body(sid, 'Segunda pergunta'));
    const prompt = fake.requests
      .at(-1)!
      .body.messages!.map((m) => m.content)
      .join('\n');
    expect(prompt).toContain('Primeira pergunta');

    // The session is anonymous on the wire: a logged-in user holding its id reads both sides.
    const user = 'maritaca-reader';
    expect((await axios('GET', `/api/v1/chat/history/${sid}`, { user })).json().messages).toHaveLength(4);
  });

  it('a model the operator does not allow is ignored', async () => {
    const r = await maritaca(body(`session_${Date.now()}_zzz`, 'Oi', 'gpt-9-ultra'));
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().model).toBe('operator-model');
    expect(fake.requests.at(-1)!.body.model).toBe('operator-model');
  });

  it('the identical retry within 30 s attaches to the same turn while it runs', async () => {
    fake.queueScript({ tokens: ['Resposta ', 'lenta.'], firstTokenDelayMs: 600 });
    const sid = `session_${Date.now()}_retry`;
    const [x, y] = await Promise.all([
      maritaca(body(sid, 'Pergunta repetida')),
      new Promise((r) => setTimeout(r, 150)).then(() => maritaca(body(sid, 'Pergunta repetida'))),
    ]);
    expect(x.statusCode, x.body).toBe(200);
    expect(y.statusCode, y.body).toBe(200);
    expect(y.json().message_id).toBe(x.json().message_id);
    const [n] = await q<{ n: number }>(
      sql`select count(*)::int as n from chat_messages where session_id = ${sid}`,
    );
    expect(n!.n).toBe(2);
  });

  it('a body without a usable last message is 422 naming it, and writes nothing', async () => {
    const before = await count('chat_messages');
    for (const bad of [
      {},
      { messages: [] },
      { messages: [{ role: 'user', content: ' ' }] },
      { messages: [{ content: 3 }] },
    ]) {
      const r = await maritaca(bad);
      const b = expectEnvelope(r, 422);
      expect(JSON.stringify(b.error.details)).toContain('messages');
      // Every path names a real place in the body (an empty list has no last message to point at).
      for (const d of b.error.details as Array<{ path: string }>) expect(d.path).not.toMatch(/-1/);
    }
    expect(await count('chat_messages')).toBe(before);
  });
});
