// Issue 12: replies survive SIGTERM, kill -9, a Postgres restart and a Redis restart; replays equal the row; dedupe races.
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createDb, rowsOf } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';
import { createRedis } from '../src/plugins/redis.js';
import { backends, silentLogger } from './support/backends.js';
import {
  chunkText,
  clusterFixture,
  FAST_LIVENESS,
  followTurn,
  spawnServer,
  startPrivateRedis,
  storedReply,
  terminals,
  waitFor,
  words,
} from './support/cluster.js';
import { postgresBinDir, startPrivatePostgres } from './support/private-postgres.js';
import { type SseEvent, streamRequest } from './support/sse.js';

const cluster = clusterFixture();
const { redis, sharedRedis, instance } = cluster;
const FAST = FAST_LIVENESS;

const rowOf = storedReply;
const row = (id: string) => rowOf(cluster.tdb.handle, id);

/** A replay ends with exactly one terminal event, last, and its text is the stored content. */
async function expectReplayEqualsRow(base: string, messageId: string, after?: SseEvent[]) {
  const stored = await row(messageId);
  const cut = after?.findLast((e) => e.data.type === 'chunk');
  const replay = await streamRequest(
    base,
    `/api/v1/chat/stream/${messageId}${cut ? `?after=${cut.id}` : ''}`,
  );
  expect(replay.status).toBe(200);
  expect(terminals(replay.events)).toHaveLength(1);
  expect(['complete', 'error']).toContain(replay.events.at(-1)!.data.type);
  const prefix = cut ? chunkText(after!.slice(0, after!.indexOf(cut) + 1)) : '';
  expect(prefix + chunkText(replay.events)).toBe(stored.content);
  return replay;
}

// Two processes sharing Postgres and Redis (not the embedded fallbacks).
const shared = () => !backends().databaseUrl || !backends().redisUrl;

describe('the row is the truth of a finished reply', () => {
  const processEnv = () => ({
    DATABASE_URL: cluster.tdb.url!,
    REDIS_URL: backends().redisUrl!,
    REDIS_KEY_PREFIX: redis!.prefix,
    LLM_API_KEY: 'k',
    LLM_BASE_URL: cluster.fake.url,
    PRODUCER_HEARTBEAT_MS: '200',
    SWEEPER_INTERVAL_MS: '60000',
  });

  it.skipIf(shared())(
    'SIGTERM: a replay on the other instance ends with one terminal event and equals the row',
    async () => {
      cluster.fake.setScript({ tokens: words(500), delayMs: 20 });
      const a = await spawnServer({ ...processEnv(), SHUTDOWN_GRACE_MS: '300' });
      const b = await instance(FAST, sharedRedis);
      const following = followTurn(a.base, 'resposta longa');
      const live = following.done;
      const messageId = await following.afterChunks(5);
      a.child.kill('SIGTERM');
      const first = await live;
      await waitFor(async () => (await row(messageId)).status === 'interrupted');
      expect(chunkText(first.events)).toBe((await row(messageId)).content);
      // From the start, and from a cursor the client kept (the replay used to hang here).
      const whole = await expectReplayEqualsRow(b.base, messageId);
      expect(whole.events.at(-1)!.data).toMatchObject({ type: 'error', code: 'GENERATION_INTERRUPTED' });
      await expectReplayEqualsRow(b.base, messageId, first.events.slice(0, 4));
    },
    180_000,
  );

  it.skipIf(shared())(
    'kill -9: a follower on the other instance and every later replay equal the stored row',
    async () => {
      cluster.fake.setScript({ tokens: words(500), delayMs: 20 });
      const a = await spawnServer(processEnv());
      const b = await instance(FAST, sharedRedis);
      const following = followTurn(a.base, 'vai cair');
      const live = following.done.catch(() => null);
      const messageId = await following.afterChunks(
        5,
        async (id) => (await row(id)).content.length > 0,
        15_000,
      );
      // A follower on B reads the Redis log, ahead of the row's last checkpoint.
      let followed = 0;
      const follower = streamRequest(b.base, `/api/v1/chat/stream/${messageId}`, {
        onEvent: (e) => {
          if (e.data.type === 'chunk') followed++;
        },
      });
      await waitFor(async () => followed > 0);
      a.child.kill('SIGKILL');
      await live;
      const seen = await follower;
      expect(terminals(seen.events)).toHaveLength(1);
      expect(seen.events.at(-1)!.data).toMatchObject({ type: 'error', code: 'GENERATION_INTERRUPTED' });
      const stored = await waitFor(async () => {
        const r = await row(messageId);
        return r.status === 'interrupted' ? r : undefined;
      });
      // The sweeper stored the dead producer's whole log: what the follower showed is the row.
      expect(chunkText(seen.events)).toBe(stored.content);
      await expectReplayEqualsRow(b.base, messageId);
      await expectReplayEqualsRow(b.base, messageId, seen.events.slice(0, 3));
    },
    180_000,
  );
});

describe('dedupe without races', () => {
  it('20 pairs of simultaneous identical POSTs on two instances make 20 turns', async () => {
    cluster.fake.setScript({ tokens: words(20), delayMs: 5 });
    const env = { RATE_LIMIT_CHAT_PER_MINUTE: '10000' };
    const a = await instance(env, redis);
    const b = backends().redisUrl ? await instance(env, sharedRedis) : a;
    const session = (i: number) => `dedupe-race-${i}`;
    const pairs = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const body = { message: `pergunta ${i}`, session_id: session(i) };
        return Promise.all([
          streamRequest(a.base, '/api/v1/chat/stream', { body }),
          streamRequest(b.base, '/api/v1/chat/stream', { body }),
        ]);
      }),
    );
    for (const [x, y] of pairs) {
      expect(x.status).toBe(200);
      expect(y.status).toBe(200);
      expect(x.events[0]!.data.message_id).toBe(y.events[0]!.data.message_id);
      expect(chunkText(x.events)).toBe(chunkText(y.events));
    }
    const [n] = rowsOf<{ users: number; assistants: number }>(
      await cluster.tdb.handle.db.execute(sql`
        select count(*) filter (where role = 'user')::int as users, count(*) filter (where role = 'assistant')::int as assistants
        from chat_messages where session_id like 'dedupe-race-%'`),
    );
    expect(n).toEqual({ users: 20, assistants: 20 });
    // The key is released with the reply: the same message again is a new turn.
    const again = await streamRequest(a.base, '/api/v1/chat/stream', {
      body: { message: 'pergunta 0', session_id: session(0) },
    });
    expect(again.events[0]!.data.message_id).not.toBe(pairs[0]![0].events[0]!.data.message_id);
  }, 120_000);
});

describe('a Postgres restart mid-turn (a private Postgres)', () => {
  it.skipIf(!postgresBinDir() || !backends().redisUrl)(
    'answers 503 with Retry-After while it is down and stores a reply that finished during it as completed',
    async () => {
      const pgp = await startPrivatePostgres();
      const admin = new pg.Client({ connectionString: pgp.url });
      await admin.connect();
      await admin.query('create database app');
      await admin.end();
      const db = await createDb({ databaseUrl: pgp.url.replace(/\/postgres$/, '/app'), poolMax: 5 });
      const mine: FastifyInstance[] = [];
      try {
        await migrate(db.db);
        const env = { ...FAST, FINAL_WRITE_RETRY_MS: '30000', RATE_LIMIT_CHAT_PER_MINUTE: '10000' };
        const a = await instance(env, redis, db);
        const b = await instance(env, sharedRedis, db);
        mine.push(a.app, b.app);
        cluster.fake.setScript({ tokens: words(60), delayMs: 25 });
        const following = followTurn(a.base, 'durante o reinício');
        const live = following.done;
        const messageId = await following.afterChunks(3);
        const modelRequest = cluster.fake.requests.at(-1)!;
        await pgp.stop();
        const turn = await fetch(`${b.base}/api/v1/chat/stream`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ message: 'outra' }),
        });
        const resume = await fetch(`${b.base}/api/v1/chat/stream/${messageId}`);
        const stop = await fetch(`${b.base}/api/v1/chat/messages/${messageId}/stop`, { method: 'POST' });
        for (const r of [turn, resume, stop]) {
          expect(r.status).toBe(503);
          expect(r.headers.get('retry-after')).toBeTruthy();
          expect(((await r.json()) as any).error.code).toBe('DEPENDENCY_UNAVAILABLE');
        }
        // The model finishes while Postgres is still down; the final write waits for it.
        await waitFor(async () => modelRequest.finished, 10_000);
        await pgp.start();
        const result = await live;
        expect(result.events.at(-1)!.data).toMatchObject({ type: 'complete' });
        const stored = await rowOf(db, messageId);
        expect(stored.status).toBe('completed');
        expect(stored.content).toBe(words(60).join(''));
        expect(chunkText(result.events)).toBe(stored.content);
      } finally {
        for (const app of mine) await app.close();
        await db.close().catch(() => {});
        await pgp.destroy();
      }
    },
    // initdb, migrations and a restart of a private Postgres: over 30 s on a loaded 2-core machine.
    120_000,
  );
});

describe('a Redis restart with a stop sent during it (a private Redis)', () => {
  it.skipIf(!backends().databaseUrl)(
    'the reply stops (or the stop is refused with 503); live-log keys re-created later expire',
    async () => {
      const pr = await startPrivateRedis();
      const prefix = 'restart:';
      const ra = createRedis(pr.url, prefix, silentLogger());
      const rb = createRedis(pr.url, prefix, silentLogger());
      const mine: FastifyInstance[] = [];
      try {
        const a = await instance(FAST, ra);
        const b = await instance(FAST, rb);
        mine.push(a.app, b.app);
        cluster.fake.setScript({ tokens: words(400), delayMs: 20 });
        const following = followTurn(a.base, 'pare durante o reinício');
        const live = following.done;
        const messageId = await following.afterChunks(5);
        await pr.stop();
        const stop = await fetch(`${b.base}/api/v1/chat/messages/${messageId}/stop`, { method: 'POST' });
        await pr.start();
        const result = await live;
        const stored = await row(messageId);
        if (stop.status === 200) {
          const body = (await stop.json()) as any;
          expect(body.status).toBe('stopped');
          expect(stored.status).toBe('stopped');
          expect(result.events.at(-1)!.data).toMatchObject({ type: 'complete', finish_reason: 'stopped' });
          expect(chunkText(result.events)).toBe(stored.content);
          expect(stored.content.length).toBeLessThan(words(400).join('').length);
        } else {
          expect(stop.status).toBe(503);
        }
        // A reply running across the restart: its re-created log key has a TTL.
        cluster.fake.setScript({ tokens: words(300), delayMs: 20 });
        let second = '';
        let n = 0;
        const running = streamRequest(a.base, '/api/v1/chat/stream', {
          body: { message: 'atravessa o reinício' },
          onEvent: (e) => {
            if (e.data.type === 'start') second = e.data.message_id;
            if (e.data.type === 'chunk') n++;
          },
        });
        await waitFor(async () => n >= 3);
        await pr.stop();
        await pr.start();
        const key = `${prefix}gen:${second}`;
        await waitFor(async () => ra.ready() && (await ra.client.exists(key)) === 1, 10_000);
        expect(await ra.client.ttl(key)).toBeGreaterThan(0);
        await fetch(`${b.base}/api/v1/chat/messages/${second}/stop`, { method: 'POST' });
        await running;
      } finally {
        for (const app of mine) await app.close();
        await ra.close();
        await rb.close();
        await pr.destroy();
      }
    },
  );
});
