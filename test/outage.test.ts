// A dependency outage is a 503 with Retry-After on every route, never a 500; the app recovers with it.
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../src/db/client.js';
import { findOutage, isOutage } from '../src/lib/outage.js';
import { backends } from './support/backends.js';
import { signHS256 } from './support/jwt.js';
import { type PrivatePostgres, postgresBinDir, startPrivatePostgres } from './support/private-postgres.js';
import { ensureBuilt, type ServerProcess, startServer } from './support/server-process.js';

const SECRET = 'outage-test-secret-0123456789abcdef';

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('the outage classifier, on errors the real drivers throw', () => {
  it('a refused connection (node-postgres through Drizzle, and ioredis) is an outage', async () => {
    const port = await closedPort();
    const handle = await createDb({ databaseUrl: `postgres://postgres@127.0.0.1:${port}/x`, poolMax: 1 });
    const err = await handle.ping().catch((e: unknown) => e);
    await handle.close();
    expect(findOutage(err)).toMatchObject({ code: 'ECONNREFUSED' });

    const redis = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => {});
    const rerr = await redis.connect().catch((e: unknown) => e);
    expect(isOutage(rerr)).toBe(true);
    // A command on a connection that has given up: ioredis's "Connection is closed."
    const closed = await redis.get('k').catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(Error);
    expect(isOutage(closed)).toBe(true);
    redis.disconnect();
  });

  it.skipIf(!backends().databaseUrl)(
    'a session killed by the server (57P01, as in a restart) is an outage',
    async () => {
      const victim = new pg.Client({ connectionString: backends().databaseUrl! });
      victim.on('error', () => {});
      await victim.connect();
      const pid = (await victim.query('select pg_backend_pid() as pid')).rows[0].pid;
      const killer = new pg.Client({ connectionString: backends().databaseUrl! });
      await killer.connect();
      const pending = victim.query('select pg_sleep(10)').catch((e: unknown) => e);
      await killer.query('select pg_terminate_backend($1)', [pid]);
      await killer.end();
      const err = await pending;
      expect(findOutage(err)).toMatchObject({ code: '57P01' });
      // And the client that lost its session: "Connection terminated" / not queryable.
      expect(isOutage(await victim.query('select 1').catch((e: unknown) => e))).toBe(true);
    },
  );

  it('bugs and bad requests are not outages', () => {
    expect(isOutage(new Error('boom'))).toBe(false);
    expect(isOutage(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isOutage(Object.assign(new Error('syntax'), { code: '42601' }))).toBe(false);
    expect(isOutage(null)).toBe(false);
  });
});

describe.skipIf(!postgresBinDir())('a Postgres that goes down and comes back', () => {
  let pgServer: PrivatePostgres;
  let server: ServerProcess;
  let auth: Record<string, string>;
  beforeAll(async () => {
    ensureBuilt();
    pgServer = await startPrivatePostgres();
    // The server as production runs it: a process of its own, with its process-level handlers.
    server = await startServer({ DATABASE_URL: pgServer.url, DATABASE_POOL_MAX: '5', JWT_SECRET: SECRET });
    await server.ready(240_000);
    auth = { authorization: `Bearer ${await signHS256(SECRET, { sub: 'user-outage' })}` };
  }, 400_000);
  afterAll(async () => {
    await server?.stop('SIGKILL');
    await pgServer?.destroy();
  });

  const call = async (method: string, url: string, payload?: object) => {
    const res = await fetch(`${server.base}${url}`, {
      method,
      headers: { ...auth, ...(payload ? { 'content-type': 'application/json' } : {}) },
      body: payload ? JSON.stringify(payload) : undefined,
    });
    const text = await res.text();
    return { status: res.status, retryAfter: res.headers.get('retry-after'), text };
  };

  it('every route answers 503 with Retry-After while it is down, and works again after', async () => {
    const turn = await call('POST', '/api/v1/chat/message', { message: 'Olá, quem é você?' });
    expect(turn.status, turn.text).toBe(200);
    const { session_id: sessionId, message_id: messageId } = JSON.parse(turn.text);
    const inv = await call('POST', '/api/v1/investigations/', { query: 'contratos' });
    expect(inv.status, inv.text).toBe(202);
    const investigationId = JSON.parse(inv.text).investigation_id as string;

    const requests: Array<[string, string, object?]> = [
      ['GET', '/api/v1/chat/sessions'],
      ['GET', `/api/v1/chat/sessions/${sessionId}`],
      ['GET', `/api/v1/chat/history/${sessionId}`],
      ['POST', '/api/v1/chat/message', { message: 'De novo?', session_id: sessionId }],
      ['POST', `/api/v1/chat/messages/${messageId}/stop`],
      ['DELETE', `/api/v1/chat/sessions/${sessionId}`],
      ['GET', '/api/v1/investigations/'],
      ['GET', `/api/v1/investigations/${investigationId}`],
      ['POST', '/api/v1/investigations/', { query: 'durante a queda' }],
      ['DELETE', `/api/v1/investigations/${investigationId}`],
    ];

    await pgServer.stop();
    const down = [];
    for (const [method, url, payload] of requests) {
      const r = await call(method, url, payload);
      down.push({ route: `${method} ${url}`, status: r.status, retryAfter: r.retryAfter, body: r.text });
    }
    // Every route: 503 with Retry-After (a dependency error), none a 500.
    expect(down.filter((d) => d.status !== 503 || !d.retryAfter)).toEqual([]);
    expect(down.map((d) => JSON.parse(d.body).error.code)).not.toContain('INTERNAL_ERROR');
    expect((await call('GET', '/health/ready')).status).toBe(503);

    await pgServer.start();
    // The pool reconnects by itself: the same reads succeed, and nothing was written while down.
    const deadline = Date.now() + 20_000;
    let history = await call('GET', `/api/v1/chat/history/${sessionId}`);
    while (history.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      history = await call('GET', `/api/v1/chat/history/${sessionId}`);
    }
    expect(history.status, history.text).toBe(200);
    const c = new pg.Client({ connectionString: pgServer.url });
    await c.connect();
    try {
      const investigations = await c.query('select query from investigations order by created_at');
      expect(investigations.rows.map((r) => r.query)).toEqual(['contratos']);
      const users = await c.query(`select count(*)::int as n from chat_messages where role = 'user'`);
      expect(users.rows[0].n).toBe(1);
    } finally {
      await c.end();
    }
    expect((await call('GET', '/health/ready')).status).toBe(200);
    // The process lived through it: no crash on a background query that failed meanwhile.
    expect(server.child.exitCode).toBeNull();
    expect(server.output()).not.toMatch(/"level":60|unhandled rejection/);
  }, 120_000);
});
