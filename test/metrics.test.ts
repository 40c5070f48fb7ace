// GET /metrics: the counters move with a completed turn, a stop and a failed model call; scrape auth.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../src/plugins/redis.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, silentLogger, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { signHS256 } from './support/jwt.js';
import { streamRequest } from './support/sse.js';

let tdb: TestDb;
const redis = createTestRedis();
let fake: FakeModel;
let app: FastifyInstance;
let base: string;
const SECRET = 'metrics-test-jwt-secret-0123456789';
const words = (n: number) => Array.from({ length: n }, (_, i) => `palavra${i} `);

/** The value of one sample (`name{labels} value`), or undefined when it is not exported. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function scrape(): Promise<string> {
  const r = await fetch(`${base}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.text();
}

async function waitFor<T>(fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
  app = await createTestApp({
    db: tdb.handle,
    redis,
    model: fakeProvider(fake),
    env: { CHECKPOINT_MS: '20', JWT_SECRET: SECRET },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await app?.close();
  await fake?.close();
  await redis?.close();
  await tdb?.drop();
});

describe('metrics', () => {
  it('exports process metrics and every turn outcome at zero before any turn', async () => {
    const text = await scrape();
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    for (const outcome of ['completed', 'stopped', 'failed', 'interrupted'])
      expect(sample(text, 'cidadao_turns_total', { outcome })).toBe(0);
    expect(sample(text, 'cidadao_turns_started_total')).toBe(0);
    expect(sample(text, 'cidadao_generations_running')).toBe(0);
  });

  it('counts a completed turn, its first chunk, its checkpoints and its request under the route pattern', async () => {
    fake.setScript({ tokens: words(12), delayMs: 15 });
    const res = await streamRequest(base, '/api/v1/chat/stream', { body: { message: 'olá' } });
    expect(res.events.at(-1)!.data.type).toBe('complete');
    const sessionId = res.events[0]!.data.session_id as string;
    await fetch(`${base}/api/v1/chat/history/${sessionId}`);

    const text = await scrape();
    expect(sample(text, 'cidadao_turns_started_total')).toBe(1);
    expect(sample(text, 'cidadao_turns_total', { outcome: 'completed' })).toBe(1);
    expect(sample(text, 'cidadao_time_to_first_chunk_seconds_count')).toBe(1);
    // 12 tokens 15 ms apart with a 20 ms checkpoint timer: the growing reply was checkpointed.
    expect(sample(text, 'cidadao_checkpoints_total', { result: 'ok' })).toBeGreaterThan(0);
    expect(sample(text, 'cidadao_checkpoints_total', { result: 'failed' })).toBe(0);
    expect(
      sample(text, 'http_request_duration_seconds_count', {
        method: 'POST',
        route: '/api/v1/chat/stream',
        status_code: '200',
      }),
    ).toBe(1);
    // The pattern, never the raw URL with an id in it.
    expect(sample(text, 'http_request_duration_seconds_count', { route: '/api/v1/chat/history/:id' })).toBe(
      1,
    );
    expect(text).not.toContain(sessionId);
  });

  it('shows a running generation, then counts its stop', async () => {
    fake.setScript({ tokens: words(400), delayMs: 20 });
    let messageId = '';
    const stream = streamRequest(base, '/api/v1/chat/stream', {
      body: { message: 'uma resposta longa' },
      onEvent: (e) => {
        if (e.data.type === 'start') messageId = e.data.message_id as string;
      },
    });
    await waitFor(
      async () => messageId !== '' && sample(await scrape(), 'cidadao_generations_running') === 1,
    );
    const stop = await fetch(`${base}/api/v1/chat/messages/${messageId}/stop`, { method: 'POST' });
    expect(stop.status).toBe(200);
    const res = await stream;
    expect(res.events.at(-1)!.data).toMatchObject({ type: 'complete', finish_reason: 'stopped' });

    const text = await scrape();
    expect(sample(text, 'cidadao_turns_started_total')).toBe(2);
    expect(sample(text, 'cidadao_turns_total', { outcome: 'stopped' })).toBe(1);
    expect(sample(text, 'cidadao_turns_total', { outcome: 'completed' })).toBe(1);
    expect(sample(text, 'cidadao_generations_running')).toBe(0);
  });

  it('counts a failed model call as a failed turn', async () => {
    fake.setScript({ failTimes: 1, failStatus: 400 });
    const res = await streamRequest(base, '/api/v1/chat/stream', { body: { message: 'vai falhar' } });
    expect(res.events.at(-1)!.data.type).toBe('error');
    const text = await scrape();
    expect(sample(text, 'cidadao_turns_started_total')).toBe(3);
    expect(sample(text, 'cidadao_turns_total', { outcome: 'failed' })).toBe(1);
    expect(sample(text, 'cidadao_final_write_retries_total')).toBe(0);
    // No chunk came, so no first-chunk time either.
    expect(sample(text, 'cidadao_time_to_first_chunk_seconds_count')).toBe(2);
  });

  it('counts a final write retried without its failing extension hook', async () => {
    fake.setScript({ tokens: words(5), delayMs: 5 });
    const before = sample(await scrape(), 'cidadao_final_write_retries_total');
    expect(before).toBe(0);
    const turn = await app.infra.chat.turns.start({ userId: null }, { message: 'com gancho' }, undefined, {
      async onFinalize() {
        throw new Error('the extension failed');
      },
    });
    const res = await streamRequest(base, `/api/v1/chat/stream/${turn.messageId}`, { method: 'GET' });
    expect(res.events.at(-1)!.data.type).toBe('complete');
    const text = await scrape();
    expect(sample(text, 'cidadao_final_write_retries_total')).toBe(1);
    expect(sample(text, 'cidadao_turns_total', { outcome: 'completed' })).toBe(2);
  });

  it('counts investigation jobs by state from the database', async () => {
    const created = await fetch(`${base}/api/v1/investigations/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'contratos', data_source: 'contracts' }),
    });
    expect(created.status).toBe(202);
    const { investigation_id: id } = (await created.json()) as { investigation_id: string };
    await waitFor(async () => {
      const r = await fetch(`${base}/api/v1/investigations/${id}`);
      return ((await r.json()) as { status: string }).status === 'completed';
    }, 20_000);
    const text = await scrape();
    expect(sample(text, 'cidadao_investigation_jobs', { state: 'completed' })).toBe(1);
    expect(sample(text, 'cidadao_investigation_jobs', { state: 'pending' })).toBe(0);
    expect(sample(text, 'cidadao_investigation_jobs', { state: 'failed' })).toBe(0);
  });
});

describe('metrics endpoint', () => {
  it('answers only the METRICS_TOKEN bearer when one is set, and a user JWT is not enough', async () => {
    const token = 'scrape-token-0123456789abcdef';
    const guarded = await createTestApp({
      db: tdb.handle,
      redis,
      env: { METRICS_TOKEN: token, JWT_SECRET: SECRET },
    });
    try {
      const none = await guarded.inject({ url: '/metrics' });
      expect(none.statusCode).toBe(401);
      expect(none.json().error.code).toBe('UNAUTHORIZED');
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      const jwt = await signHS256(SECRET, { sub: 'alice' });
      const user = await guarded.inject({ url: '/metrics', headers: { authorization: `Bearer ${jwt}` } });
      expect(user.statusCode).toBe(401);
      const wrong = await guarded.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}x` } });
      expect(wrong.statusCode).toBe(401);
      const ok = await guarded.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain('cidadao_turns_started_total');
      expect(ok.body).not.toContain(token);
    } finally {
      await guarded.close();
    }
  });

  it('counts Redis errors seen by the readiness check', async () => {
    const dead = createRedis('redis://127.0.0.1:1', 'x:', silentLogger());
    const probe = await createTestApp({ db: tdb.handle, redis: dead });
    try {
      expect((await probe.inject({ url: '/health/ready' })).statusCode).toBe(503);
      const text = (await probe.inject({ url: '/metrics' })).body;
      expect(sample(text, 'cidadao_redis_errors_total', { source: 'readiness' })).toBe(1);
      // The client keeps reconnecting; each refused attempt is a connection error.
      await waitFor(async () => {
        const now = (await probe.inject({ url: '/metrics' })).body;
        return (sample(now, 'cidadao_redis_errors_total', { source: 'connection' }) ?? 0) > 0;
      });
      expect(sample(text, 'cidadao_postgres_errors_total', { source: 'request' })).toBe(0);
    } finally {
      await probe.close();
      await dead.close();
    }
  });
});
