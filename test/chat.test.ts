import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { createOfflineAgent, type TurnModel } from '../src/modules/agents/offline.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { signHS256 } from './support/jwt.js';
import { type StreamResult, streamRequest } from './support/sse.js';

const SECRET = 'test-app-secret-0123456789abcdef';
const ORIGIN = 'http://localhost:3000';
let tdb: TestDb;
const redis = createTestRedis();
let fake: FakeModel;

const opened: FastifyInstance[] = [];
async function start(opts: { env?: Record<string, string>; model?: TurnModel; redis?: typeof redis } = {}) {
  const app = await createTestApp({
    db: tdb.handle,
    redis: opts.redis === undefined ? redis : opts.redis,
    model: opts.model,
    env: { JWT_SECRET: SECRET, CORS_ORIGINS: ORIGIN, ...opts.env },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  opened.push(app);
  const { port } = app.server.address() as { port: number };
  return { app, base: `http://127.0.0.1:${port}` };
}

const token = (sub: string) => signHS256(SECRET, { sub });
const auth = async (sub: string) => ({ authorization: `Bearer ${await token(sub)}` });

async function q<T>(query: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await tdb.handle.db.execute(query));
}
const counts = async () =>
  (
    await q<{ s: number; m: number }>(
      sql`select (select count(*)::int from chat_sessions) as s, (select count(*)::int from chat_messages) as m`,
    )
  )[0]!;

/** The events a client sees, with consecutive chunks joined (chunk boundaries are not part of the contract). */
function eventsOf(r: StreamResult) {
  const out: Array<Record<string, any>> = [];
  for (const { data } of r.events) {
    const last = out.at(-1);
    if (data.type === 'chunk' && last?.type === 'chunk') last.content += data.content;
    else out.push({ ...data });
  }
  return out;
}

async function lastAssistantId() {
  const [row] = await q<{ id: string }>(
    sql`select id from chat_messages where role = 'assistant' order by created_at desc, seq desc limit 1`,
  );
  return row?.id;
}

function chunksOf(r: StreamResult) {
  return r.events.filter((e) => e.data.type === 'chunk').map((e) => e.data.content as string);
}

let base: string;
let offlineSlow: { base: string };
beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
  base = (await start()).base;
  offlineSlow = await start({ model: createOfflineAgent({ tokenDelayMs: 15 }) });
});
afterAll(async () => {
  for (const app of opened) await app.close();
  await fake.close();
  await redis?.close();
  await tdb.drop();
});

describe('POST /api/v1/chat/stream', () => {
  it('streams the full event sequence with exact framing and stores what it streamed', async () => {
    const r = await streamRequest(base, '/api/v1/chat/stream', {
      body: { message: 'ajuda', session_id: 'session_1732000000000_ab12cd3' },
      headers: { origin: ORIGIN },
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-cache, no-transform');
    expect(r.headers['x-accel-buffering']).toBe('no');
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(r.headers['x-request-id']).toBeTruthy();
    expect(r.raw.endsWith('\n')).toBe(true);

    const types = r.events.map((e) => e.data.type);
    expect(types.slice(0, 4)).toEqual(['start', 'detecting', 'intent', 'agent_selected']);
    expect(types.filter((t) => t === 'complete')).toHaveLength(1);
    expect(types.at(-1)).toBe('complete');
    expect(types.filter((t) => t === 'chunk').length).toBeGreaterThan(3);
    // ids are strictly increasing cursors
    const seqs = r.events.map((e) => Number(e.id.split('-')[1]));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(r.events.map((e) => e.id)).size).toBe(r.events.length);

    const start = r.events[0]!.data;
    expect(start.session_id).toBe('session_1732000000000_ab12cd3');
    expect(Date.parse(start.timestamp)).not.toBeNaN();
    const complete = r.events.at(-1)!.data;
    expect(complete).toMatchObject({
      session_id: start.session_id,
      message_id: start.message_id,
      finish_reason: 'stop',
      usage: { estimated: true },
    });
    expect(Array.isArray(complete.suggested_actions)).toBe(true);

    const chunks = chunksOf(r);
    for (const c of chunks) expect(c.length).toBeGreaterThan(0);
    for (const c of chunks.slice(0, -1)) expect(c).toMatch(/\s$/);
    const streamed = chunks.join('');
    expect(streamed).toContain('\n');
    expect(streamed).toContain('**');

    const [assistant] = await q<{ content: string; status: string; role: string }>(
      sql`select content, status, role from chat_messages where id = ${start.message_id}`,
    );
    expect(assistant).toEqual({ content: streamed, status: 'completed', role: 'assistant' });
    const [user] = await q<{ content: string }>(
      sql`select content from chat_messages where id = ${start.user_message_id}`,
    );
    expect(user!.content).toBe('ajuda');
  });

  it('rebuilds from the stored row exactly the events the live stream sent, alias and contracts included', async () => {
    // A second instance with no shared log and no local generation can only rebuild from the row.
    const other = await start({ redis: null });
    for (const message of ['oi, tudo bem?', 'investigue contratos de medicamentos do Ministério da Saúde']) {
      const live = await streamRequest(base, '/api/v1/chat/stream', {
        body: { message, agent_id: 'niemeyer' },
      });
      const start = live.events[0]!.data;
      const complete = live.events.at(-1)!.data;
      expect(complete).toMatchObject({
        type: 'complete',
        agent_id: 'niemeyer',
        agent_name: 'Oscar Niemeyer',
      });
      const rebuilt = await streamRequest(other.base, `/api/v1/chat/stream/${start.message_id}`, {
        method: 'GET',
      });
      expect(rebuilt.status).toBe(200);
      expect(eventsOf(rebuilt)).toEqual(eventsOf(live));
      // The rebuilt stream's cursors continue the live ones: resuming from any live cursor on the
      // rebuilding instance yields exactly the rest of the live events.
      const cut = live.events.findIndex((e) => e.data.type === 'chunk') + 1;
      const resumed = await streamRequest(other.base, `/api/v1/chat/stream/${start.message_id}`, {
        method: 'GET',
        headers: { 'last-event-id': live.events[cut]!.id },
      });
      expect(eventsOf(resumed)).toEqual(eventsOf({ ...live, events: live.events.slice(cut + 1) }));
    }
    const contractTurn = eventsOf(
      await streamRequest(other.base, `/api/v1/chat/stream/${(await lastAssistantId())!}`, { method: 'GET' }),
    );
    expect(contractTurn.some((e) => e.type === 'contract')).toBe(true);
    expect(contractTurn.at(-1)).toMatchObject({ type: 'complete', agent_id: 'niemeyer' });
    expect(Array.isArray(contractTurn.at(-1)!.contracts)).toBe(true);
  });

  it('stores the message exactly as sent and echoes the requested agent alias', async () => {
    const message = '  <b>Oi</b>   Niemeyer!\n\n  tudo bem?  ';
    const r = await streamRequest(base, '/api/v1/chat/stream', { body: { message, agent_id: 'niemeyer' } });
    const selected = r.events.find((e) => e.data.type === 'agent_selected')!.data;
    expect(selected).toEqual({ type: 'agent_selected', agent_id: 'niemeyer', agent_name: 'Oscar Niemeyer' });
    const chunkAgents = r.events.filter((e) => e.data.type === 'chunk').map((e) => e.data.agent_id);
    expect(chunkAgents.length).toBeGreaterThan(0);
    expect(new Set(chunkAgents)).toEqual(new Set(['niemeyer']));
    expect(r.events.at(-1)!.data).toMatchObject({ type: 'complete', agent_id: 'niemeyer' });
    const start = r.events[0]!.data;
    const [user] = await q<{ content: string }>(
      sql`select content from chat_messages where id = ${start.user_message_id}`,
    );
    expect(user!.content).toBe(message);
    const [session] = await q<{ agent_id: string; title: string }>(
      sql`select agent_id, title from chat_sessions where id = ${start.session_id}`,
    );
    expect(session!.agent_id).toBe('oscar_niemeyer');
    expect(session!.title).toBe('<b>Oi</b> Niemeyer! tudo bem?');
  });

  it('keeps generating and stores the reply when the client disconnects after the second chunk', async () => {
    let messageId = '';
    let chunks = 0;
    await new Promise<void>((resolve, reject) => {
      streamRequest(offlineSlow.base, '/api/v1/chat/stream', {
        body: { message: 'quem são vocês?' },
        onEvent: (e) => {
          if (e.data.type === 'start') messageId = e.data.message_id;
          if (e.data.type === 'chunk') chunks++;
        },
        disconnectAfter: 6,
      }).then(() => resolve(), reject);
    });
    expect(chunks).toBe(2);
    const [midway] = await q<{ status: string }>(
      sql`select status from chat_messages where id = ${messageId}`,
    );
    expect(midway!.status).toBe('streaming');
    let row: { status: string; content: string } | undefined;
    for (let i = 0; i < 200; i++) {
      [row] = await q<{ status: string; content: string }>(
        sql`select status, content from chat_messages where id = ${messageId}`,
      );
      if (row?.status !== 'streaming') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(row!.status).toBe('completed');
    expect(row!.content).toContain('Cidadão.AI');
  });

  it('stores the partial reply as failed and sends an error event when the model fails mid-stream', async () => {
    fake.setScript({
      tokens: ['Primeira ', 'parte ', 'da ', 'resposta ', 'perdida'],
      dropAfter: 3,
      delayMs: 5,
    });
    const model = fakeProvider(fake);
    const { base: modelBase } = await start({ model });
    const r = await streamRequest(modelBase, '/api/v1/chat/stream', { body: { message: 'olá' } });
    const last = r.events.at(-1)!.data;
    expect(last.type).toBe('error');
    expect(typeof last.message).toBe('string');
    expect(last.code).toBeTruthy();
    expect(r.events.some((e) => e.data.type === 'complete')).toBe(false);
    const streamed = chunksOf(r).join('');
    expect(streamed).toBe('Primeira parte da ');
    const [row] = await q<{ status: string; content: string }>(
      sql`select status, content from chat_messages where id = ${r.events[0]!.data.message_id}`,
    );
    expect(row).toEqual({ status: 'failed', content: streamed });
    const [usage] = await q<{ status: string }>(
      sql`select status from generation_usage where message_id = ${r.events[0]!.data.message_id}`,
    );
    expect(usage!.status).toBe('failed');
  });

  it('keeps order and counts right for two concurrent turns on one session', async () => {
    const session_id = 'concurrent-session-1';
    const [a, b] = await Promise.all([
      streamRequest(base, '/api/v1/chat/stream', { body: { message: 'oi', session_id } }),
      streamRequest(base, '/api/v1/chat/stream', { body: { message: 'ajuda', session_id } }),
    ]);
    expect(a.events.at(-1)!.data.type).toBe('complete');
    expect(b.events.at(-1)!.data.type).toBe('complete');
    const rows = await q<{ seq: number; role: string; reply_to: string | null; id: string }>(
      sql`select seq::int, role, reply_to, id from chat_messages where session_id = ${session_id} order by seq`,
    );
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(rows.map((r) => r.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(rows[1]!.reply_to).toBe(rows[0]!.id);
    expect(rows[3]!.reply_to).toBe(rows[2]!.id);
    const [s] = await q<{ message_count: number }>(
      sql`select message_count from chat_sessions where id = ${session_id}`,
    );
    expect(s!.message_count).toBe(4);
  });
});

describe('heartbeats and ownership of a reply', () => {
  it('sends `: ping` comments while the stream is idle', async () => {
    fake.setScript({ tokens: ['depois ', 'da ', 'pausa'], firstTokenDelayMs: 400 });
    const model = fakeProvider(fake);
    const { base: hb } = await start({ model, env: { SSE_HEARTBEAT_MS: '100' } });
    const r = await streamRequest(hb, '/api/v1/chat/stream', { body: { message: 'oi' } });
    expect(r.raw).toMatch(/\n: ping\n\n/);
    expect(r.events.at(-1)!.data.type).toBe('complete');
  });

  it('beats on every idle stream from the one shared heartbeat timer', async () => {
    fake.setScript({ tokens: ['depois ', 'da ', 'pausa'], firstTokenDelayMs: 500 });
    const model = fakeProvider(fake);
    const { base: hb } = await start({ model, env: { SSE_HEARTBEAT_MS: '100' } });
    // A user each: twelve anonymous turns from one address would spend this file's shared rate limit.
    const all = await Promise.all(
      Array.from({ length: 12 }, async (_, i) =>
        streamRequest(hb, '/api/v1/chat/stream', {
          body: { message: 'oi' },
          headers: await auth(`heartbeat-wheel-${i}`),
        }),
      ),
    );
    for (const r of all) {
      expect(r.raw).toMatch(/\n: ping\n\n/);
      expect(r.events.at(-1)!.data.type).toBe('complete');
    }
  });

  it('hides a user’s reply from others on resume and stop', async () => {
    const headers = await auth('owner-of-reply');
    const r = await streamRequest(base, '/api/v1/chat/stream', { body: { message: 'oi' }, headers });
    const id = r.events[0]!.data.message_id as string;
    for (const h of [{}, await auth('someone-else')]) {
      expect((await fetch(`${base}/api/v1/chat/stream/${id}`, { headers: h })).status).toBe(404);
      expect(
        (await fetch(`${base}/api/v1/chat/messages/${id}/stop`, { method: 'POST', headers: h })).status,
      ).toBe(404);
    }
    const replay = await streamRequest(base, `/api/v1/chat/stream/${id}`, { headers });
    expect(chunksOf(replay).join('')).toBe(chunksOf(r).join(''));
    const stop = await fetch(`${base}/api/v1/chat/messages/${id}/stop`, { method: 'POST', headers });
    expect(stop.status).toBe(409);
  });
});

describe('the contract-search path', () => {
  it('streams searching, found and contract events and ends in one complete carrying the contracts', async () => {
    const r = await streamRequest(base, '/api/v1/chat/stream', {
      body: { message: 'investigue contratos de material de escritório' },
    });
    const types = r.events.map((e) => e.data.type);
    expect(types.slice(0, 4)).toEqual(['start', 'detecting', 'intent', 'agent_selected']);
    expect(r.events[2]!.data.intent).toBe('investigate');
    expect(r.events[3]!.data.agent_id).toBe('zumbi');
    for (const t of ['thinking', 'searching', 'found', 'contract']) expect(types).toContain(t);
    expect(types.indexOf('contract')).toBeLessThan(types.indexOf('chunk'));
    const contracts = r.events.filter((e) => e.data.type === 'contract').map((e) => e.data.data);
    expect(contracts.length).toBeGreaterThan(0);
    for (const key of [
      'id',
      'numero',
      'objeto',
      'valor',
      'valor_formatado',
      'fornecedor',
      'cnpj_fornecedor',
      'orgao',
      'data_assinatura',
      'vigencia_inicio',
      'vigencia_fim',
      'situacao',
      'modalidade',
      'processo',
    ]) {
      expect(contracts[0]).toHaveProperty(key);
    }
    expect(contracts[0].valor_formatado).toMatch(/^R\$/);
    expect(String(contracts[0].objeto).toLowerCase()).toContain('escrit');
    const complete = r.events.at(-1)!.data;
    expect(types.filter((t) => t === 'complete')).toHaveLength(1);
    expect(complete.type).toBe('complete');
    expect(complete.contracts).toEqual(contracts);
    expect(complete.total_contracts).toBeGreaterThanOrEqual(contracts.length);
    expect(complete.download_available).toBe(true);
    expect(complete.sample_data).toBe(true);
    const text = chunksOf(r).join('');
    expect(text).toContain(String(contracts[0].objeto));
    expect(text).toMatch(/exemplo/i);
  });
});

describe('chat opens an investigation', () => {
  it('starts a durable investigation linked to the session when asked to', async () => {
    const headers = await auth('investigator');
    const r = await streamRequest(base, '/api/v1/chat/stream', {
      body: {
        message: 'abra uma investigação sobre contratos de material de escritório',
        session_id: 'inv-chat-1',
      },
      headers,
    });
    const complete = r.events.at(-1)!.data;
    expect(complete.type).toBe('complete');
    expect(complete.investigation_id).toMatch(/^[0-9a-f-]{36}$/);
    const [row] = await q<{ session_id: string; user_id: string }>(
      sql`select session_id, user_id from investigations where id = ${complete.investigation_id}`,
    );
    expect(row).toEqual({ session_id: 'inv-chat-1', user_id: 'investigator' });
    const list = (await (await fetch(`${base}/api/v1/investigations/`, { headers })).json()) as any[];
    expect(list.map((i) => i.investigation_id)).toContain(complete.investigation_id);
    expect(chunksOf(r).join('')).toContain(complete.investigation_id);
  });
});

describe('POST /api/v1/chat/message', () => {
  it('runs the same turn and answers JSON', async () => {
    const res = await fetch(`${base}/api/v1/chat/message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await auth('user-json')) },
      body: JSON.stringify({ message: 'obrigado!', agent_id: 'drummond' }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({
      agent_id: 'drummond',
      agent_name: 'Carlos Drummond de Andrade',
      intent: 'thanks',
    });
    expect(body.message.length).toBeGreaterThan(5);
    const [row] = await q<{ content: string; user_id: string }>(
      sql`select content, user_id from chat_messages where id = ${body.message_id}`,
    );
    expect(row).toEqual({ content: body.message, user_id: 'user-json' });
  });
});

describe('bad input writes nothing', () => {
  const cases: Array<[string, { body?: string; headers?: Record<string, string> }, number, string]> = [
    ['missing message', { body: '{}' }, 422, 'VALIDATION_ERROR'],
    ['blank message', { body: JSON.stringify({ message: '   \n ' }) }, 422, 'VALIDATION_ERROR'],
    ['oversized message', { body: JSON.stringify({ message: 'a'.repeat(8001) }) }, 422, 'VALIDATION_ERROR'],
    [
      'bad session_id',
      { body: JSON.stringify({ message: 'oi', session_id: 'has space' }) },
      422,
      'VALIDATION_ERROR',
    ],
    [
      'long session_id',
      { body: JSON.stringify({ message: 'oi', session_id: 'a'.repeat(129) }) },
      422,
      'VALIDATION_ERROR',
    ],
    ['unknown agent', { body: JSON.stringify({ message: 'oi', agent_id: 'pele' }) }, 422, 'UNKNOWN_AGENT'],
    [
      'oversized context',
      { body: JSON.stringify({ message: 'oi', context: { x: 'a'.repeat(17000) } }) },
      422,
      'VALIDATION_ERROR',
    ],
    ['non-JSON body', { body: '{"message": ' }, 400, 'INVALID_JSON'],
    [
      'wrong content type',
      { body: 'message=oi', headers: { 'content-type': 'text/plain' } },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'body over the limit',
      { body: JSON.stringify({ message: 'a'.repeat(2 * 1024 * 1024) }) },
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'invalid token',
      { body: JSON.stringify({ message: 'oi' }), headers: { authorization: 'Bearer nope.nope.nope' } },
      401,
      'INVALID_TOKEN',
    ],
  ];
  for (const [name, req, status, code] of cases) {
    it(`${name} → ${status} ${code}`, async () => {
      const before = await counts();
      const res = await fetch(`${base}/api/v1/chat/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: ORIGIN, ...req.headers },
        body: req.body,
      });
      expect(res.status).toBe(status);
      expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      const body = (await res.json()) as any;
      expect(body.error.code).toBe(code);
      expect(body.request_id).toBeTruthy();
      if (code === 'UNKNOWN_AGENT') expect(body.error.details.valid_agent_ids).toContain('zumbi');
      expect(await counts()).toEqual(before);
    });
  }

  it('an expired token is 401 with WWW-Authenticate, not an anonymous session', async () => {
    const expired = await signHS256(SECRET, { sub: 'u-expired', exp: Math.floor(Date.now() / 1000) - 60 });
    const before = await counts();
    const res = await fetch(`${base}/api/v1/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${expired}` },
      body: JSON.stringify({ message: 'oi', session_id: 'expired-token-session' }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(await counts()).toEqual(before);
  });
});
