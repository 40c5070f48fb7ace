// Agents that think: real model streaming, history and memory in the prompt, limits and budgets (issue 4).
import { createServer } from 'node:net';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { createRedis, type RedisHandle } from '../src/plugins/redis.js';
import { createTestApp } from './support/app.js';
import { backends, createTestDb, createTestRedis, silentLogger, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { signHS256 } from './support/jwt.js';
import { type SseEvent, streamRequest } from './support/sse.js';

const SECRET = 'agents-secret-0123456789abcdef';
let tdb: TestDb;
let fake: FakeModel;
const redis = createTestRedis();
const apps: FastifyInstance[] = [];
const closers: RedisHandle[] = [];

async function instance(env: Record<string, string> = {}, r: RedisHandle | null = redis) {
  const model = fakeProvider(fake, { model: 'modelo-padrao', agentModels: { zumbi: 'modelo-zumbi' } });
  const app = await createTestApp({ db: tdb.handle, redis: r, model, env: { JWT_SECRET: SECRET, ...env } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  apps.push(app);
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}
const bearer = async (sub: string) => ({ authorization: `Bearer ${await signHS256(SECRET, { sub })}` });
async function q<T>(query: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await tdb.handle.db.execute(query));
}
const messageCount = async () =>
  (await q<{ n: number }>(sql`select count(*)::int as n from chat_messages`))[0]!.n;

beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
});
afterAll(async () => {
  for (const a of apps) await a.close();
  for (const r of closers) await r.close();
  await fake.close();
  await redis?.close();
  await tdb.drop();
});

describe('model streaming', () => {
  it('forwards the first chunk before the model has finished', async () => {
    fake.setScript({ tokens: ['Primeiro ', 'pedaço ', ...Array(30).fill('mais ')], delayMs: 30 });
    const base = await instance();
    let firstChunkAt = 0;
    let tokensAtFirstChunk = -1;
    const r = await streamRequest(base, '/api/v1/chat/stream', {
      body: { message: 'explique licitação', agent_id: 'zumbi' },
      onEvent: (e) => {
        if (e.data.type === 'chunk' && !firstChunkAt) {
          firstChunkAt = Date.now();
          tokensAtFirstChunk = fake.requests.at(-1)!.tokensSent;
        }
      },
    });
    expect(r.events.at(-1)!.data.type).toBe('complete');
    expect(tokensAtFirstChunk).toBeGreaterThan(0);
    expect(tokensAtFirstChunk).toBeLessThan(32);
    expect(fake.requests.at(-1)!.body.model).toBe('modelo-zumbi');
    expect(fake.requests.at(-1)!.body.stream).toBe(true);
    const complete = r.events.at(-1)!.data;
    expect(complete.usage).toEqual({
      prompt_tokens: 37,
      completion_tokens: expect.any(Number),
      estimated: false,
    });
  });

  it('sends the first turn’s user and assistant messages in the second turn’s prompt, and uses memory', async () => {
    const base = await instance();
    fake.setScript({ tokens: ['O ', 'pregão ', 'é ', 'uma ', 'modalidade.'] });
    const headers = await bearer('memo-user');
    const one = await streamRequest(base, '/api/v1/chat/stream', {
      body: { message: 'O que é pregão?', session_id: 'memory-session-1' },
      headers,
    });
    expect(one.events.at(-1)!.data.type).toBe('complete');
    fake.setScript({ tokens: ['Sim.'] });
    await streamRequest(base, '/api/v1/chat/stream', {
      body: { message: 'E dispensa?', session_id: 'memory-session-1' },
      headers,
    });
    const messages = fake.requests.at(-1)!.body.messages as Array<{ role: string; content: string }>;
    expect(messages[0]!.role).toBe('system');
    expect(messages.slice(1)).toEqual([
      { role: 'user', content: 'O que é pregão?' },
      { role: 'assistant', content: 'O pregão é uma modalidade.' },
      { role: 'user', content: 'E dispensa?' },
    ]);
    expect(messages[0]!.content).toContain('Memória');
    expect(messages[0]!.content).toContain('O que é pregão?');
    if (redis) {
      const key = `${redis.prefix}memory:conv:memory-session-1`;
      expect(await redis.client.llen(key)).toBe(2);
      const ttl = await redis.client.ttl(key);
      expect(ttl).toBeGreaterThan(24 * 3600 - 60);
      expect(ttl).toBeLessThanOrEqual(24 * 3600);
    }
  });

  it('retries a model error before the first token and completes', async () => {
    const base = await instance();
    fake.setScript({ tokens: ['Resposta ', 'após ', 'falha.'], failTimes: 1, failStatus: 503 });
    const before = fake.requests.length;
    const r = await streamRequest(base, '/api/v1/chat/stream', { body: { message: 'oi' } });
    expect(r.events.at(-1)!.data.type).toBe('complete');
    expect(fake.requests.length - before).toBe(2);
    const [row] = await q<{ content: string; status: string }>(
      sql`select content, status from chat_messages where id = ${r.events[0]!.data.message_id}`,
    );
    expect(row).toEqual({ content: 'Resposta após falha.', status: 'completed' });
    const [usage] = await q<{ status: string; prompt_tokens: number; estimated: boolean }>(
      sql`select status, prompt_tokens, estimated from generation_usage where message_id = ${r.events[0]!.data.message_id}`,
    );
    expect(usage).toEqual({ status: 'completed', prompt_tokens: 37, estimated: false });
  });

  it('under GENERATION_ON_DISCONNECT=cancel a disconnect aborts the upstream request and stores the partial', async () => {
    const base = await instance({ GENERATION_ON_DISCONNECT: 'cancel' });
    fake.setScript({ tokens: Array(200).fill('palavra '), delayMs: 15 });
    let messageId = '';
    await streamRequest(base, '/api/v1/chat/stream', {
      body: { message: 'fale muito' },
      disconnectAfter: 7,
      onEvent: (e: SseEvent) => {
        if (e.data.type === 'start') messageId = e.data.message_id;
      },
    });
    await fake.waitForAbort(fake.requests.length - 1, 3000);
    let row: { status: string; content: string } | undefined;
    for (let i = 0; i < 100 && row?.status !== 'interrupted'; i++) {
      await new Promise((r) => setTimeout(r, 30));
      [row] = await q(sql`select status, content from chat_messages where id = ${messageId}`);
    }
    expect(row!.status).toBe('interrupted');
    expect(row!.content.startsWith('palavra ')).toBe(true);
    const [usage] = await q<{ status: string; estimated: boolean }>(
      sql`select status, estimated from generation_usage where message_id = ${messageId}`,
    );
    expect(usage).toEqual({ status: 'interrupted', estimated: true });
  });
});

describe('rate limits and budgets', () => {
  it('answers the N+1th turn in a window with 429, Retry-After and nothing written; users do not share a bucket', async () => {
    fake.setScript({ tokens: ['ok'] });
    const base = await instance({ RATE_LIMIT_CHAT_PER_MINUTE: '2' });
    const alice = await bearer('rl-alice');
    for (let i = 0; i < 2; i++) {
      const ok = await fetch(`${base}/api/v1/chat/message`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...alice },
        body: JSON.stringify({ message: `oi ${i}` }),
      });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-ratelimit-limit')).toBe('2');
    }
    const before = await messageCount();
    const limited = await fetch(`${base}/api/v1/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://localhost:3000', ...alice },
      body: JSON.stringify({ message: 'mais uma' }),
    });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(limited.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    expect(((await limited.json()) as any).error.code).toBe('RATE_LIMITED');
    expect(await messageCount()).toBe(before);

    const bob = await fetch(`${base}/api/v1/chat/message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await bearer('rl-bob')) },
      body: JSON.stringify({ message: 'oi' }),
    });
    expect(bob.status).toBe(200);
    // Anonymous callers are limited per client IP (X-Forwarded-For from the edge is trusted).
    for (const ip of ['203.0.113.1', '203.0.113.1', '203.0.113.2']) {
      const r = await fetch(`${base}/api/v1/chat/message`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
        body: JSON.stringify({ message: 'oi' }),
      });
      expect(r.status).toBe(200);
    }
    const third = await fetch(`${base}/api/v1/chat/message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.1' },
      body: JSON.stringify({ message: 'oi' }),
    });
    expect(third.status).toBe(429);
    // A client cannot escape its bucket by sending its own X-Forwarded-For: only the hop the
    // edge appended (the last one) counts.
    const forged = await fetch(`${base}/api/v1/chat/message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.7, 203.0.113.1' },
      body: JSON.stringify({ message: 'oi' }),
    });
    expect(forged.status).toBe(429);
  });

  it('caps concurrent generations per user, across instances', async () => {
    fake.setScript({ tokens: Array(100).fill('lento '), delayMs: 20 });
    const a = await instance({ MAX_CONCURRENT_GENERATIONS: '1' });
    const shared = redis ? createRedis(backends().redisUrl!, redis.prefix, silentLogger()) : null;
    if (shared) closers.push(shared);
    const b = redis ? await instance({ MAX_CONCURRENT_GENERATIONS: '1' }, shared) : a;
    const headers = await bearer('busy-user');
    let started = false;
    const first = streamRequest(a, '/api/v1/chat/stream', {
      body: { message: 'primeira' },
      headers,
      onEvent: (e) => {
        if (e.data.type === 'start') started = true;
      },
    });
    while (!started) await new Promise((r) => setTimeout(r, 10));
    const before = await messageCount();
    const second = await fetch(`${b}/api/v1/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ message: 'segunda' }),
    });
    expect(second.status).toBe(429);
    expect(((await second.json()) as any).error.code).toBe('TOO_MANY_GENERATIONS');
    expect(await messageCount()).toBe(before);
    await first;
    fake.setScript({ tokens: ['ok'] });
    // The slot is released just after `complete` went out (after the reply's post-write hooks), so
    // the next turn is admitted within moments: polled with a deadline far below the slot's TTL.
    const until = Date.now() + 10_000;
    let third: Response;
    for (;;) {
      third = await fetch(`${b}/api/v1/chat/message`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ message: 'terceira' }),
      });
      if (third.status !== 429 || Date.now() > until) break;
      await third.arrayBuffer();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(third.status).toBe(200);
  });

  it('enforces the daily token budget from the usage ledger', async () => {
    fake.setScript({ tokens: ['uma ', 'resposta'] });
    const base = await instance({ DAILY_TOKEN_BUDGET: '30' });
    const headers = { 'content-type': 'application/json', ...(await bearer('budget-user')) };
    const ok = await fetch(`${base}/api/v1/chat/message`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ message: 'oi' }),
    });
    expect(ok.status).toBe(200);
    const over = await fetch(`${base}/api/v1/chat/message`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ message: 'oi' }),
    });
    expect(over.status).toBe(429);
    expect(((await over.json()) as any).error.code).toBe('TOKEN_BUDGET_EXCEEDED');
  });

  it('keeps chat working when Redis is down (limits fail open, memory is empty)', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    const dead = createRedis(`redis://127.0.0.1:${port}`, 'dead:', silentLogger());
    closers.push(dead);
    fake.setScript({ tokens: ['funciona ', 'sem ', 'Redis.'] });
    const base = await instance({ RATE_LIMIT_CHAT_PER_MINUTE: '1' }, dead);
    for (let i = 0; i < 3; i++) {
      const r = await streamRequest(base, '/api/v1/chat/stream', {
        body: { message: `oi ${i}`, session_id: 'no-redis-1' },
      });
      expect(r.status).toBe(200);
      expect(r.events.at(-1)!.data.type).toBe('complete');
    }
    const [n] = await q<{ n: number }>(
      sql`select count(*)::int as n from chat_messages where session_id = 'no-redis-1' and status = 'completed'`,
    );
    expect(n!.n).toBe(6);
  });
});
