// Academy test helpers: a listening app, JSON calls as a given user, and ledger assertions on the database.
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { rowsOf } from '../../src/db/client.js';
import type { ModelProvider } from '../../src/modules/llm/provider.js';
import type { RedisHandle } from '../../src/plugins/redis.js';
import { createTestApp } from './app.js';
import type { TestDb } from './backends.js';
import { signHS256 } from './jwt.js';

export const SECRET = 'academy-secret-0123456789abcdef';
export const A = '/api/v1/academy';

export interface Client {
  app: FastifyInstance;
  base: string;
  call(who: string | null, method: string, path: string, body?: unknown): Promise<Res>;
  token(sub: string): Promise<string>;
}

export interface Res {
  status: number;
  headers: Headers;
  json: any;
}

export async function startAcademy(
  tdb: TestDb,
  redis: RedisHandle | null,
  opts: { env?: Record<string, string>; model?: ModelProvider } = {},
): Promise<Client> {
  const app = await createTestApp({
    db: tdb.handle,
    redis,
    model: opts.model,
    env: {
      JWT_SECRET: SECRET,
      RATE_LIMIT_READ_PER_MINUTE: '100000',
      RATE_LIMIT_CHAT_PER_MINUTE: '100000',
      MAX_CONCURRENT_GENERATIONS: '100',
      ...opts.env,
    },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  const tokens = new Map<string, string>();
  const token = async (sub: string) => {
    if (!tokens.has(sub)) tokens.set(sub, await signHS256(SECRET, { sub }));
    return tokens.get(sub)!;
  };
  return {
    app,
    base,
    token,
    async call(who, method, path, body) {
      const headers: Record<string, string> = {};
      if (who) headers.authorization = `Bearer ${await token(who)}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
    },
  };
}

export async function q<T>(tdb: TestDb, query: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await tdb.handle.db.execute(query));
}

type Counts = Record<
  | 'users'
  | 'conversations'
  | 'ledger'
  | 'user_missions'
  | 'user_badges'
  | 'sessions'
  | 'messages'
  | 'total_xp',
  number
>;

/** Row counts of every academy table (and chat), to prove a request wrote nothing. */
export async function counts(tdb: TestDb): Promise<Counts> {
  return (
    await q<Counts>(
      tdb,
      sql`select
        (select count(*)::int from academy_users) as users,
        (select count(*)::int from academy_conversations) as conversations,
        (select count(*)::int from academy_xp_transactions) as ledger,
        (select count(*)::int from academy_user_missions) as user_missions,
        (select count(*)::int from academy_user_badges) as user_badges,
        (select count(*)::int from chat_sessions) as sessions,
        (select count(*)::int from chat_messages) as messages,
        (select coalesce(sum(total_xp), 0)::int from academy_users) as total_xp`,
    )
  )[0]!;
}

export interface LedgerRow {
  id: number;
  amount: number;
  balance_after: number;
  source_type: string;
  source_id: string;
}

/**
 * The ledger invariants of ACADEMY.md §5.4, checked on the database AND on what the API shows:
 * each balance_after chains from the previous one, the last is total_xp = Σ amount.
 */
export async function expectLedgerIntact(tdb: TestDb, c: Client, sub: string): Promise<LedgerRow[]> {
  const rows = (
    await q<LedgerRow>(
      tdb,
      sql`select id::int as id, amount, balance_after, source_type, source_id
          from academy_xp_transactions where user_id = ${sub} order by id`,
    )
  ).map((r) => ({ ...r, amount: Number(r.amount), balance_after: Number(r.balance_after) }));
  let running = 0;
  for (const r of rows) {
    expect(r.amount).toBeGreaterThan(0);
    running += r.amount;
    expect(r.balance_after).toBe(running);
  }
  const [user] = await q<{ total_xp: number }>(
    tdb,
    sql`select total_xp from academy_users where user_id = ${sub}`,
  );
  expect(Number(user!.total_xp)).toBe(running);
  const me = await c.call(sub, 'GET', `${A}/users/me`);
  expect(me.json.progress.total_xp).toBe(running);
  const history = await c.call(sub, 'GET', `${A}/users/me/xp-history?limit=100`);
  expect(history.json.map((h: { id: number }) => h.id)).toEqual(
    rows
      .map((r) => r.id)
      .reverse()
      .slice(0, 100),
  );
  return rows;
}

export async function enrol(c: Client, sub: string, body: Record<string, unknown> = {}) {
  const r = await c.call(sub, 'POST', `${A}/users`, { username: `user ${sub}`, ...body });
  expect(r.status).toBe(201);
  return r.json;
}
