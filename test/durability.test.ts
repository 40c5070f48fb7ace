// Durable generations across instances: resume, stop, retries, shutdown and crashes (API.md §1.3).
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { backends } from './support/backends.js';
import { chunkText, clusterFixture, followTurn, spawnServer, waitFor } from './support/cluster.js';
import { type SseEvent, streamRequest } from './support/sse.js';

const cluster = clusterFixture();
// sharedRedis: same server and key prefix, its own connections: what a second instance would have.
const { redis, sharedRedis, instance } = cluster;
const words = (n: number) => Array.from({ length: n }, (_, i) => `palavra${i}${i % 7 === 6 ? '\n' : ' '}`);

async function q<T>(query: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await cluster.tdb.handle.db.execute(query));
}
const row = async (id: string) =>
  (
    await q<{ status: string; content: string }>(
      sql`select status, content from chat_messages where id = ${id}`,
    )
  )[0]!;

const multi = () => backends().redisUrl !== null;

describe('resume', () => {
  it('resumes on another instance after a drop, with no event twice and nothing missing', async () => {
    cluster.fake.setScript({ tokens: words(60), delayMs: 8 });
    const a = await instance();
    const b = multi() ? await instance({}, sharedRedis) : a;
    const first: SseEvent[] = [];
    await streamRequest(a.base, '/api/v1/chat/stream', {
      body: { message: 'conte uma história' },
      disconnectAfter: 7,
      onEvent: (e) => first.push(e),
    });
    const seen = first.slice(0, 7);
    const messageId = seen[0]!.data.message_id as string;
    const rest = await streamRequest(b.base, `/api/v1/chat/stream/${messageId}`, {
      headers: { 'last-event-id': seen.at(-1)!.id },
    });
    expect(rest.status).toBe(200);
    const all = [...seen, ...rest.events];
    expect(all.at(-1)!.data.type).toBe('complete');
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    const stored = await row(messageId);
    expect(stored.status).toBe('completed');
    expect(chunkText(all)).toBe(stored.content);
    expect(stored.content).toBe(words(60).join(''));
    // The live log really was in Redis (not only the database fallback).
    if (redis) expect(await redis.client.xlen(`${redis.prefix}gen:${messageId}`)).toBeGreaterThan(2);
  });

  it('rebuilds the stream from the stored message once the live log is gone', async () => {
    cluster.fake.setScript({ tokens: words(30), delayMs: 1 });
    const a = await instance();
    const full = await streamRequest(a.base, '/api/v1/chat/stream', { body: { message: 'outra história' } });
    const messageId = full.events[0]!.data.message_id as string;
    // The live log expires (TTL) and the instance that ran it is gone.
    // Let the mirror's last flush land first: the log ends with the terminal event.
    if (redis) {
      await waitFor(async () => {
        const [last] = await redis.client.xrevrange(`${redis.prefix}gen:${messageId}`, '+', '-', 'COUNT', 1);
        return last?.[1][1]?.includes('"type":"complete"');
      });
    }
    await redis?.client.del(`${redis.prefix}gen:${messageId}`);
    // A late flush re-creating only the tail of the log must not be mistaken for the whole log.
    await redis?.client.xadd(`${redis.prefix}gen:${messageId}`, '99999-999', 'e', '{"type":"complete"}');
    const b = await instance({}, multi() ? sharedRedis : null);
    const cut = full.events.findIndex((e, i) => e.data.type === 'chunk' && i > 8);
    const resumed = await streamRequest(
      b.base,
      `/api/v1/chat/stream/${messageId}?after=${full.events[cut]!.id}`,
    );
    const combined = chunkText(full.events.slice(0, cut + 1)) + chunkText(resumed.events);
    expect(combined).toBe((await row(messageId)).content);
    expect(resumed.events.at(-1)!.data).toMatchObject({ type: 'complete', message_id: messageId });
    const fromStart = await streamRequest(b.base, `/api/v1/chat/stream/${messageId}`);
    expect(fromStart.events[0]!.data.type).toBe('start');
    expect(chunkText(fromStart.events)).toBe((await row(messageId)).content);
  });

  it('rejects a cursor that is not one and hides other people’s replies', async () => {
    const a = await instance();
    const r = await fetch(`${a.base}/api/v1/chat/stream/00000000-0000-4000-8000-000000000000`);
    expect(r.status).toBe(404);
    const bad = await fetch(`${a.base}/api/v1/chat/stream/00000000-0000-4000-8000-000000000000?after=zzz`);
    expect(bad.status).toBe(422);
  });
});

describe('stop', () => {
  it('stops a generation running on another instance at once (over pub/sub, not at a checkpoint) and aborts the model request', async () => {
    cluster.fake.setScript({ tokens: words(400), delayMs: 20 });
    // No checkpoint or heartbeat during the test, so the row cannot carry the stop: only the
    // pub/sub message (or, on one instance, the local abort) can stop the reply. This proves the
    // fast path without timing it on a machine whose speed the test does not control.
    const slowRow = { CHECKPOINT_MS: '600000', PRODUCER_HEARTBEAT_MS: '600000' };
    const a = await instance(slowRow);
    const b = multi() ? await instance(slowRow, sharedRedis) : a;
    let messageId = '';
    // This turn's model request is the next one (earlier tests' requests are still in the list).
    const requestIndex = cluster.fake.requests.length;
    const streaming = streamRequest(a.base, '/api/v1/chat/stream', {
      body: { message: 'fale bastante' },
      onEvent: (e) => {
        if (e.data.type === 'start') messageId = e.data.message_id;
      },
    });
    await waitFor(
      async () =>
        messageId &&
        (await row(messageId)).status === 'streaming' &&
        (cluster.fake.requests[requestIndex]?.tokensSent ?? 0) > 5,
    );
    const res = await fetch(`${b.base}/api/v1/chat/messages/${messageId}/stop`, { method: 'POST' });
    expect(res.status).toBe(200);
    const stopped = (await res.json()) as any;
    expect(stopped).toMatchObject({ id: messageId, status: 'stopped', role: 'assistant' });
    // Stopped mid-reply: the model had not sent everything, and its request was aborted.
    expect(stopped.content.length).toBeGreaterThan(0);
    expect(stopped.content.length).toBeLessThan(words(400).join('').length);
    await cluster.fake.waitForAbort(requestIndex, 10_000);
    expect(cluster.fake.requests[requestIndex]!.finished).toBe(false);
    const events = (await streaming).events;
    expect(events.at(-1)!.data).toMatchObject({ type: 'complete', finish_reason: 'stopped' });
    expect(chunkText(events)).toBe(stopped.content);
    expect((await row(messageId)).content).toBe(stopped.content);
    const again = await fetch(`${b.base}/api/v1/chat/messages/${messageId}/stop`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(((await again.json()) as any).error.details.message.status).toBe('stopped');
    const [usage] = await q<{ status: string }>(
      sql`select status from generation_usage where message_id = ${messageId}`,
    );
    expect(usage!.status).toBe('stopped');
  });
});

describe('retries and idempotency', () => {
  it('absorbs the frontend’s three identical retries into one turn', async () => {
    cluster.fake.setScript({ tokens: words(40), delayMs: 10 });
    const a = await instance();
    const body = { message: 'pergunta repetida', session_id: 'retry-session-1' };
    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(await streamRequest(a.base, '/api/v1/chat/stream', { body, disconnectAfter: 2 + i }));
    }
    const ids = new Set(results.map((r) => r.events[0]!.data.message_id));
    expect(ids.size).toBe(1);
    const [n] = await q<{ users: number; assistants: number }>(sql`
      select count(*) filter (where role = 'user')::int as users, count(*) filter (where role = 'assistant')::int as assistants
      from chat_messages where session_id = 'retry-session-1'`);
    expect(n).toEqual({ users: 1, assistants: 1 });
    const full = await streamRequest(a.base, '/api/v1/chat/stream', { body });
    expect(full.events[0]!.data.message_id).toBe([...ids][0]);
    expect(chunkText(full.events)).toBe((await row([...ids][0] as string)).content);
  });

  it('attaches a repeated Idempotency-Key and refuses it with another body', async () => {
    cluster.fake.setScript({ tokens: words(10), delayMs: 1 });
    const a = await instance();
    const headers = { 'idempotency-key': 'key-123' };
    const first = await streamRequest(a.base, '/api/v1/chat/stream', {
      body: { message: 'um', session_id: 'idem-1' },
      headers,
    });
    const again = await streamRequest(a.base, '/api/v1/chat/stream', {
      body: { message: 'um', session_id: 'idem-1' },
      headers,
    });
    expect(again.events[0]!.data.message_id).toBe(first.events[0]!.data.message_id);
    expect(chunkText(again.events)).toBe(chunkText(first.events));
    const conflict = await fetch(`${a.base}/api/v1/chat/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ message: 'dois', session_id: 'idem-1' }),
    });
    expect(conflict.status).toBe(409);
    expect(((await conflict.json()) as any).error.code).toBe('IDEMPOTENCY_CONFLICT');
    const [n] = await q<{ n: number }>(
      sql`select count(*)::int as n from chat_messages where session_id = 'idem-1'`,
    );
    expect(n!.n).toBe(2);
  });
});

describe('deploys and crashes', () => {
  const processEnv = () => ({
    DATABASE_URL: cluster.tdb.url!,
    REDIS_URL: backends().redisUrl!,
    REDIS_KEY_PREFIX: redis!.prefix,
    LLM_API_KEY: 'k',
    LLM_BASE_URL: cluster.fake.url,
    PRODUCER_HEARTBEAT_MS: '200',
    SWEEPER_INTERVAL_MS: '60000',
  });

  // Needs a database and a Redis that two processes can share (not the embedded fallbacks).
  const shared = () => !backends().databaseUrl || !backends().redisUrl;

  it.skipIf(shared())(
    'SIGTERM mid-stream: the stream ends with an error, the row is interrupted with its text, B keeps serving',
    async () => {
      cluster.fake.setScript({ tokens: words(500), delayMs: 20 });
      const a = await spawnServer({ ...processEnv(), SHUTDOWN_GRACE_MS: '300' });
      const b = await instance();
      const following = followTurn(a.base, 'resposta longa');
      const streaming = following.done;
      const messageId = await following.afterChunks(3);
      a.child.kill('SIGTERM');
      const result = await streaming;
      const last = result.events.at(-1)!.data;
      expect(last).toMatchObject({ type: 'error', code: 'GENERATION_INTERRUPTED' });
      const stored = await row(messageId);
      expect(stored.status).toBe('interrupted');
      expect(stored.content.length).toBeGreaterThan(0);
      expect(chunkText(result.events)).toBe(stored.content);
      const exitCode = await new Promise((r) => a.child.once('exit', r));
      expect(exitCode).toBe(0);
      cluster.fake.setScript({ tokens: words(5) });
      const other = await streamRequest(b.base, '/api/v1/chat/stream', { body: { message: 'oi' } });
      expect(other.events.at(-1)!.data.type).toBe('complete');
    },
    180_000,
  );

  it.skipIf(shared())(
    'kill -9: the sweeper marks the orphaned row interrupted within its interval',
    async () => {
      cluster.fake.setScript({ tokens: words(500), delayMs: 20 });
      const a = await spawnServer(processEnv());
      const following = followTurn(a.base, 'vai cair');
      const streaming = following.done.catch(() => null);
      const messageId = await following.afterChunks(
        3,
        async (id) => (await row(id)).content.length > 0,
        15_000,
      );
      a.child.kill('SIGKILL');
      await streaming;
      await instance({ PRODUCER_HEARTBEAT_MS: '200', SWEEPER_INTERVAL_MS: '200' });
      const t0 = Date.now();
      const swept = await waitFor(async () => {
        const r = await row(messageId);
        return r.status === 'interrupted' ? r : undefined;
      }, 5000);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(swept.content.length).toBeGreaterThan(0);
    },
    180_000,
  );
});
