// The row is the truth of a finished reply: no replay ends before its row does, a restarted database
// does not make live producers look dead, a stop on a long-dead producer answers at once, and a final
// write that fails for good ends in `error`, then a row that equals what the client saw.
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createDb, type DbHandle, rowsOf } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';
import { chunkEvent, startEvent } from '../src/modules/generation/events.js';
import { producerAlive, sweepOrphans } from '../src/modules/generation/generation.repo.js';
import { createRedisMirror } from '../src/modules/generation/redis-log.js';
import { backends, silentLogger } from './support/backends.js';
import {
  chunkText,
  clusterFixture,
  FAST_LIVENESS,
  followTurn,
  storedReply,
  terminals,
  waitFor,
  words,
} from './support/cluster.js';
import { postgresBinDir, startPrivatePostgres } from './support/private-postgres.js';
import { streamRequest } from './support/sse.js';

const cluster = clusterFixture();
const { redis, sharedRedis, instance } = cluster;
const FAST = FAST_LIVENESS;

const rowOf = storedReply;

/** A turn whose producer died long ago: its row `streaming` with `checkpoint`, its last beat an hour old. */
async function deadTurn(db: DbHandle, session: string, checkpoint: string) {
  const [r] = rowsOf<{ id: string; user_id: string; created_at: Date }>(
    await db.db.execute(sql`
      with s as (insert into chat_sessions (id, title, message_count, last_seq) values (${session}, 't', 2, 2) returning id),
      u as (insert into chat_messages (id, session_id, seq, role, content, status)
            select gen_random_uuid(), id, 1, 'user', 'pergunta', 'completed' from s returning id, session_id)
      insert into chat_messages (id, session_id, seq, role, content, status, reply_to, heartbeat_at)
      select gen_random_uuid(), session_id, 2, 'assistant', ${checkpoint}, 'streaming', id, now() - interval '1 hour'
      from u returning id, reply_to as user_id, created_at`),
  );
  return { messageId: r!.id, userMessageId: r!.user_id, startedAt: r!.created_at };
}

describe('a replay never ends before its row does', () => {
  it('closes a dead producer’s row (with its whole live log when there is one) and replays what it stored', async () => {
    // No sweeper during the test: only the replay itself can close the row.
    const a = await instance({ PRODUCER_HEARTBEAT_MS: '200', SWEEPER_INTERVAL_MS: '3600000' }, redis);
    const turn = await deadTurn(cluster.tdb.handle, 'dead-producer-1', 'Olá! Esta ');
    const full = 'Olá! Esta é uma resposta ';
    if (redis) {
      // The dead producer's mirrored log runs past its last checkpoint.
      const mirror = createRedisMirror(redis, { maxLen: 1000, ttlS: 600, log: silentLogger() });
      const start = startEvent({ sessionId: 'dead-producer-1', ...turn });
      mirror.append(turn.messageId, { id: '0-1', seq: 1, offset: 0, event: start });
      let offset = 0;
      for (const [i, piece] of ['Olá! ', 'Esta ', 'é uma ', 'resposta '].entries()) {
        offset += piece.length;
        const event = chunkEvent(piece, 'abaporu');
        mirror.append(turn.messageId, { id: `${offset}-${i + 2}`, seq: i + 2, offset, event });
      }
      // (The mirror merges consecutive chunks into one entry named by the last one's cursor.)
      const key = `${redis.prefix}gen:${turn.messageId}`;
      await waitFor(
        async () => (await redis.client.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0] === `${offset}-5`,
      );
    }
    const replay = await streamRequest(a.base, `/api/v1/chat/stream/${turn.messageId}`);
    expect(replay.status).toBe(200);
    expect(terminals(replay.events)).toHaveLength(1);
    expect(replay.events.at(-1)!.data).toMatchObject({ type: 'error', code: 'GENERATION_INTERRUPTED' });
    // The terminal event went out only once the row was final, and the text is the row's.
    const stored = await rowOf(cluster.tdb.handle, turn.messageId);
    expect(stored.status).toBe('interrupted');
    expect(chunkText(replay.events)).toBe(stored.content);
    expect(stored.content).toBe(redis ? full : 'Olá! Esta ');
    // A client that had the checkpoint resumes from its cursor to the same end.
    const resumed = await streamRequest(a.base, `/api/v1/chat/stream/${turn.messageId}?after=10-3`);
    expect(terminals(resumed.events)).toHaveLength(1);
    expect(`Olá! Esta ${chunkText(resumed.events)}`).toBe(stored.content);
  });

  it('a stop on a producer that died long ago answers at once, not a liveness timeout later', async () => {
    // Default heartbeat: a producer is dead after 15 s without one; this one beat an hour ago.
    const a = await instance({ SWEEPER_INTERVAL_MS: '3600000' }, redis);
    const turn = await deadTurn(cluster.tdb.handle, 'dead-producer-2', 'Olá! ');
    const t0 = Date.now();
    const res = await fetch(`${a.base}/api/v1/chat/messages/${turn.messageId}/stop`, { method: 'POST' });
    const elapsed = Date.now() - t0;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: turn.messageId, status: 'stopped', content: 'Olá! ' });
    // Before, the stop waited `staleAfterMs` + 0.5 s (15.5 s) from its own arrival, whatever the last beat.
    expect(elapsed).toBeLessThan(15_000);
  });
});

describe.skipIf(!postgresBinDir())('a private Postgres that restarts or stays down', () => {
  async function privateDb() {
    const pgp = await startPrivatePostgres();
    const admin = new pg.Client({ connectionString: pgp.url });
    await admin.connect();
    await admin.query('create database app');
    await admin.end();
    const db = await createDb({ databaseUrl: pgp.url.replace(/\/postgres$/, '/app'), poolMax: 5 });
    await migrate(db.db);
    return { pgp, db };
  }

  it('a restarted database gives every producer `staleAfterMs` to beat again before it counts as dead', async () => {
    const { pgp, db } = await privateDb();
    try {
      // A live producer's row during an outage: its last beat is older than the liveness window.
      const turn = await deadTurn(db, 'restart-grace', 'Olá! ');
      await pgp.stop();
      await pgp.start();
      const stale = 5000;
      const restartedAt = Date.now();
      // Right after the restart the producer is still presumed alive: nothing closes its row...
      await waitFor(async () =>
        db
          .ping()
          .then(() => true)
          .catch(() => false),
      );
      expect(await producerAlive(db.db, turn.messageId, stale)).toBe(true);
      expect(await sweepOrphans(db.db, stale)).toEqual([]);
      // ...until it has had the window to beat and did not.
      const closed = await waitFor(async () => {
        const ids = await sweepOrphans(db.db, stale);
        return ids.length ? ids : undefined;
      }, 30_000);
      expect(closed).toEqual([turn.messageId]);
      expect(Date.now() - restartedAt).toBeGreaterThanOrEqual(stale - 1000);
      expect(await producerAlive(db.db, turn.messageId, stale)).toBe(false);
    } finally {
      await db.close().catch(() => {});
      await pgp.destroy();
    }
  }, 120_000);

  it.skipIf(!backends().redisUrl)(
    'a final write that fails for good: the client gets `error`, then the row stores what it saw and replays equal it',
    async () => {
      const { pgp, db } = await privateDb();
      const mine: FastifyInstance[] = [];
      try {
        const env = { ...FAST, FINAL_WRITE_RETRY_MS: '300', RATE_LIMIT_CHAT_PER_MINUTE: '10000' };
        const a = await instance(env, redis, db);
        const b = await instance(env, sharedRedis, db);
        mine.push(a.app, b.app);
        cluster.fake.setScript({ tokens: words(60), delayMs: 25 });
        const following = followTurn(a.base, 'o banco cai e não volta a tempo');
        const live = following.done;
        const messageId = await following.afterChunks(3);
        await pgp.stop();
        // Postgres stays down past FINAL_WRITE_RETRY_MS: the reply ends with `error`, never `complete`.
        const seen = await live;
        expect(terminals(seen.events)).toHaveLength(1);
        expect(seen.events.at(-1)!.data).toMatchObject({ type: 'error', code: 'PERSIST_FAILED' });
        expect(chunkText(seen.events)).toBe(words(60).join(''));
        await pgp.start();
        // Once Postgres is back (and the producer had its window to beat), the sweeper closes the
        // row with the producer's whole live log: the text the client saw.
        const stored = await waitFor(async () => {
          const r = await rowOf(db, messageId).catch(() => undefined);
          return r?.status === 'interrupted' ? r : undefined;
        }, 30_000);
        expect(stored.content).toBe(chunkText(seen.events));
        for (const base of [a.base, b.base]) {
          const replay = await streamRequest(base, `/api/v1/chat/stream/${messageId}`);
          expect(terminals(replay.events)).toHaveLength(1);
          expect(replay.events.at(-1)!.data).toMatchObject({ type: 'error', code: 'GENERATION_INTERRUPTED' });
          expect(chunkText(replay.events)).toBe(stored.content);
        }
      } finally {
        for (const app of mine) await app.close();
        await db.close().catch(() => {});
        await pgp.destroy();
      }
    },
    120_000,
  );
});
