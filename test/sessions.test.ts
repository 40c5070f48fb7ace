import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { signHS256 } from './support/jwt.js';

const SECRET = 'sessions-secret-0123456789abcdef';
let tdb: TestDb;
let app: FastifyInstance;
const redis = createTestRedis();
const tokens: Record<string, string> = {};

beforeAll(async () => {
  tdb = await createTestDb();
  app = await createTestApp({ db: tdb.handle, redis, env: { JWT_SECRET: SECRET } });
  for (const u of ['alice', 'bob']) tokens[u] = await signHS256(SECRET, { sub: u });
});
afterAll(async () => {
  await app.close();
  await redis?.close();
  await tdb.drop();
});

type Who = 'alice' | 'bob' | 'anon';
const headers = (who: Who) => (who === 'anon' ? {} : { authorization: `Bearer ${tokens[who]}` });
const call = (who: Who, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
  app.inject({ method, url, headers: headers(who), payload });

async function turn(who: Who, session_id: string, message = 'oi') {
  const r = await call(who, 'POST', '/api/v1/chat/message', { message, session_id });
  return r;
}
async function q<T>(query: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await tdb.handle.db.execute(query));
}

describe('sessions', () => {
  it('lists the caller’s sessions by most recent activity, with offset and cursor paging', async () => {
    for (const id of ['a-1', 'a-2', 'a-3'])
      expect((await turn('alice', id, `primeira mensagem de ${id}`)).statusCode).toBe(200);
    await turn('bob', 'b-1');
    await turn('alice', 'a-1', 'de novo'); // a-1 becomes the most recent

    const all = (await call('alice', 'GET', '/api/v1/chat/sessions')).json();
    expect(all.sessions.map((s: { id: string }) => s.id)).toEqual(['a-1', 'a-3', 'a-2']);
    expect(all.count).toBe(3);
    expect(all.sessions[0]).toMatchObject({
      id: 'a-1',
      user_id: 'alice',
      title: 'primeira mensagem de a-1',
      status: 'active',
      message_count: 4,
    });
    for (const k of ['created_at', 'updated_at', 'last_message_at', 'last_activity', 'context']) {
      expect(all.sessions[0]).toHaveProperty(k);
    }

    const p1 = (await call('alice', 'GET', '/api/v1/chat/sessions?limit=2')).json();
    expect(p1.sessions.map((s: { id: string }) => s.id)).toEqual(['a-1', 'a-3']);
    expect(p1.next_cursor).toBeTruthy();
    const p2 = (await call('alice', 'GET', `/api/v1/chat/sessions?limit=2&cursor=${p1.next_cursor}`)).json();
    expect(p2.sessions.map((s: { id: string }) => s.id)).toEqual(['a-2']);
    expect(p2.next_cursor).toBeNull();
    const off = (await call('alice', 'GET', '/api/v1/chat/sessions?limit=2&offset=2')).json();
    expect(off.sessions.map((s: { id: string }) => s.id)).toEqual(['a-2']);

    const anon = await call('anon', 'GET', '/api/v1/chat/sessions');
    expect(anon.json()).toMatchObject({ sessions: [], count: 0 });
    expect((await call('alice', 'GET', '/api/v1/chat/sessions?limit=0')).statusCode).toBe(422);
    expect((await call('alice', 'GET', '/api/v1/chat/sessions?cursor=garbage')).statusCode).toBe(422);
  });

  it('enforces ownership on every session route: owner yes, other user and anonymous 404', async () => {
    await turn('alice', 'owned-1', 'minha sessão');
    const routes: Array<['GET' | 'PATCH' | 'DELETE' | 'POST', string, object?]> = [
      ['GET', '/api/v1/chat/sessions/owned-1'],
      ['PATCH', '/api/v1/chat/sessions/owned-1', { title: 'roubado' }],
      ['GET', '/api/v1/chat/history/owned-1'],
      ['DELETE', '/api/v1/chat/history/owned-1'],
      ['DELETE', '/api/v1/chat/sessions/owned-1'],
      ['POST', '/api/v1/chat/message', { message: 'invasão', session_id: 'owned-1' }],
    ];
    const before = await q<{ n: number }>(
      sql`select count(*)::int as n from chat_messages where session_id = 'owned-1'`,
    );
    for (const who of ['bob', 'anon'] as const) {
      for (const [method, url, payload] of routes) {
        const r = await call(who, method, url, payload);
        expect(r.statusCode, `${who} ${method} ${url}`).toBe(404);
        expect(r.json().error.code).toBe('SESSION_NOT_FOUND');
      }
    }
    const after = await q<{ n: number }>(
      sql`select count(*)::int as n from chat_messages where session_id = 'owned-1' and deleted_at is null`,
    );
    expect(after).toEqual(before);
    const [s] = await q<{ title: string; deleted_at: null }>(
      sql`select title, deleted_at from chat_sessions where id = 'owned-1'`,
    );
    expect(s).toEqual({ title: 'minha sessão', deleted_at: null });
    expect((await call('alice', 'GET', '/api/v1/chat/sessions/owned-1')).statusCode).toBe(200);
  });

  it('treats an anonymous session id as a capability, claimed by the first logged-in writer', async () => {
    expect((await turn('anon', 'anon-cap-1')).statusCode).toBe(200);
    expect((await call('bob', 'GET', '/api/v1/chat/sessions/anon-cap-1')).statusCode).toBe(200);
    expect((await call('anon', 'GET', '/api/v1/chat/history/anon-cap-1')).json().messages).toHaveLength(2);
    expect((await turn('bob', 'anon-cap-1', 'agora é meu')).statusCode).toBe(200);
    const [s] = await q<{ user_id: string }>(sql`select user_id from chat_sessions where id = 'anon-cap-1'`);
    expect(s!.user_id).toBe('bob');
    expect((await call('anon', 'GET', '/api/v1/chat/sessions/anon-cap-1')).statusCode).toBe(404);
    expect((await turn('alice', 'anon-cap-1')).statusCode).toBe(404);
    expect((await turn('anon', 'anon-cap-1')).statusCode).toBe(404);
  });

  it('renames, soft-deletes and restores within the window', async () => {
    await turn(
      'alice',
      'lifecycle-1',
      'uma pergunta bem longa sobre contratos de merenda escolar em municípios do interior do Nordeste brasileiro',
    );
    const [t] = await q<{ title: string }>(sql`select title from chat_sessions where id = 'lifecycle-1'`);
    expect(t!.title.length).toBeLessThanOrEqual(81);
    expect(t!.title.endsWith('…')).toBe(true);

    const renamed = await call('alice', 'PATCH', '/api/v1/chat/sessions/lifecycle-1', {
      title: '  Merenda  ',
    });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json().title).toBe('Merenda');
    await turn('alice', 'lifecycle-1', 'outra mensagem');
    expect((await call('alice', 'GET', '/api/v1/chat/sessions/lifecycle-1')).json().title).toBe('Merenda');
    expect(
      (await call('alice', 'PATCH', '/api/v1/chat/sessions/lifecycle-1', { title: '  ' })).statusCode,
    ).toBe(422);

    expect((await call('alice', 'DELETE', '/api/v1/chat/sessions/lifecycle-1')).statusCode).toBe(204);
    expect((await call('alice', 'GET', '/api/v1/chat/sessions/lifecycle-1')).statusCode).toBe(404);
    expect((await call('alice', 'GET', '/api/v1/chat/history/lifecycle-1')).statusCode).toBe(404);
    const list = (await call('alice', 'GET', '/api/v1/chat/sessions?limit=100')).json();
    expect(list.sessions.map((s: { id: string }) => s.id)).not.toContain('lifecycle-1');
    expect((await turn('alice', 'lifecycle-1')).statusCode).toBe(404);

    expect((await call('bob', 'POST', '/api/v1/chat/sessions/lifecycle-1/restore')).statusCode).toBe(404);
    const restored = await call('alice', 'POST', '/api/v1/chat/sessions/lifecycle-1/restore');
    expect(restored.statusCode).toBe(200);
    expect(restored.json().id).toBe('lifecycle-1');
    expect((await call('alice', 'GET', '/api/v1/chat/history/lifecycle-1')).json().messages).toHaveLength(4);

    await call('alice', 'DELETE', '/api/v1/chat/sessions/lifecycle-1');
    await tdb.handle.db.execute(
      sql`update chat_sessions set deleted_at = now() - interval '31 days' where id = 'lifecycle-1'`,
    );
    expect((await call('alice', 'POST', '/api/v1/chat/sessions/lifecycle-1/restore')).statusCode).toBe(404);
  });
});

describe('history', () => {
  it('returns the latest messages oldest-first and pages back with the cursor', async () => {
    for (let i = 1; i <= 3; i++) await turn('alice', 'hist-1', `pergunta ${i}`);
    const page = (await call('alice', 'GET', '/api/v1/chat/history/hist-1?limit=4')).json();
    expect(page.session_id).toBe('hist-1');
    expect(page.messages.map((m: { role: string }) => m.role)).toEqual([
      'user',
      'assistant',
      'user',
      'assistant',
    ]);
    expect(page.messages[0].content).toBe('pergunta 2');
    expect(page.messages[2].content).toBe('pergunta 3');
    expect(page.has_more).toBe(true);
    const m = page.messages[1];
    for (const k of [
      'id',
      'session_id',
      'role',
      'content',
      'status',
      'agent_id',
      'agent_name',
      'intent',
      'timestamp',
      'usage',
      'metadata',
    ]) {
      expect(m).toHaveProperty(k);
    }
    expect(m.status).toBe('completed');
    const older = (
      await call('alice', 'GET', `/api/v1/chat/history/hist-1?limit=4&before=${page.next_cursor}`)
    ).json();
    expect(older.messages.map((x: { content: string }) => x.content)[0]).toBe('pergunta 1');
    expect(older.messages).toHaveLength(2);
    expect(older.has_more).toBe(false);
    expect(older.next_cursor).toBeNull();
    expect((await call('alice', 'GET', '/api/v1/chat/history/hist-1?limit=201')).statusCode).toBe(422);
    expect((await call('alice', 'GET', '/api/v1/chat/history/nope-nope')).statusCode).toBe(404);
  });

  it('clears a session’s messages softly', async () => {
    await turn('alice', 'clear-1');
    expect((await call('bob', 'DELETE', '/api/v1/chat/history/clear-1')).statusCode).toBe(404);
    expect((await call('alice', 'DELETE', '/api/v1/chat/history/clear-1')).statusCode).toBe(204);
    const page = (await call('alice', 'GET', '/api/v1/chat/history/clear-1')).json();
    expect(page.messages).toEqual([]);
    expect((await call('alice', 'GET', '/api/v1/chat/sessions/clear-1')).json().message_count).toBe(0);
    const [n] = await q<{ n: number }>(
      sql`select count(*)::int as n from chat_messages where session_id = 'clear-1' and deleted_at is not null`,
    );
    expect(n!.n).toBe(2);
    await turn('alice', 'clear-1', 'recomeço');
    const again = (await call('alice', 'GET', '/api/v1/chat/history/clear-1')).json();
    expect(again.messages.map((x: { content: string }) => x.content)[0]).toBe('recomeço');
  });
});

describe('agents', () => {
  it('lists the roster as a JSON array', async () => {
    const r = await call('anon', 'GET', '/api/v1/chat/agents');
    const agents = r.json();
    expect(Array.isArray(agents)).toBe(true);
    expect(agents.length).toBe(21);
    expect(agents[0]).toEqual({
      id: 'abaporu',
      name: 'Abaporu',
      avatar: expect.any(String),
      role: expect.any(String),
      description: expect.any(String),
      status: 'active',
    });
  });

  it('accepts every frontend agent id', async () => {
    for (const id of [
      'niemeyer',
      'quiteria',
      'bobardi',
      'santos-dumont',
      'deodoro',
      'lina',
      'lobato',
      'dumont',
      'ayrton_senna',
      'zumbi',
    ]) {
      const r = await call('anon', 'POST', '/api/v1/chat/message', { message: 'oi', agent_id: id });
      expect(r.statusCode, id).toBe(200);
      expect(r.json().agent_id).toBe(id);
    }
  });
});
