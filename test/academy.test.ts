import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { A, type Client, counts, enrol, expectLedgerIntact, q, startAcademy } from './support/academy.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { signHS256 } from './support/jwt.js';

let tdb: TestDb;
const redis = createTestRedis();
let c: Client;

beforeAll(async () => {
  tdb = await createTestDb();
  c = await startAcademy(tdb, redis);
});
afterAll(async () => {
  await c.app.close();
  await redis?.close();
  await tdb.drop();
});

const ME_ROUTES: Array<[string, string, unknown?]> = [
  ['POST', '/users', { username: 'alguem' }],
  ['GET', '/users/me'],
  ['GET', '/users/me/xp-history'],
  ['POST', '/conversations', { agent_name: 'zumbi', track: 'backend' }],
  ['GET', '/conversations'],
  ['GET', '/conversations/00000000-0000-4000-8000-000000000000'],
  ['GET', '/conversations/00000000-0000-4000-8000-000000000000/messages'],
  ['POST', '/conversations/00000000-0000-4000-8000-000000000000/messages/stream', { message: 'oi' }],
  ['POST', '/conversations/00000000-0000-4000-8000-000000000000/messages', { message: 'oi' }],
  ['POST', '/conversations/00000000-0000-4000-8000-000000000000/complete', {}],
  ['GET', '/missions/me'],
  ['POST', '/missions/mission_001/start'],
  ['POST', '/missions/mission_001/complete', {}],
  ['GET', '/badges/me'],
  ['GET', '/leaderboard/me'],
  ['GET', '/stats/me'],
];

describe('who may call what', () => {
  it('answers 401 with WWW-Authenticate: Bearer on every "me" route without a token, writing nothing', async () => {
    const before = await counts(tdb);
    for (const [method, path, body] of ME_ROUTES) {
      const r = await c.call(null, method, `${A}${path}`, body);
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.json.error.code).toBe('UNAUTHORIZED');
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect(await counts(tdb)).toEqual(before);
  });

  it('answers 401 INVALID_TOKEN for a bad token, on public routes too', async () => {
    const bad = await signHS256('another-secret-0123456789abcdef', { sub: 'x' });
    for (const path of ['/users/me', '/leaderboard', '/agents', '/missions']) {
      const res = await fetch(`${c.base}${A}${path}`, { headers: { authorization: `Bearer ${bad}` } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_TOKEN');
    }
  });

  it('answers 404 ACADEMY_USER_NOT_FOUND on every "me" route but enrolment for a caller with no profile', async () => {
    const before = await counts(tdb);
    for (const [method, path, body] of ME_ROUTES.slice(1)) {
      const r = await c.call('ghost', method, `${A}${path}`, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json.error.code).toBe('ACADEMY_USER_NOT_FOUND');
      expect(r.json.error.message).toBe('Perfil nao encontrado. Cadastre-se primeiro.');
    }
    expect(await counts(tdb)).toEqual(before);
  });
});

describe('enrolment and profile', () => {
  it('enrols the verified sub (a user_id in the body is ignored) and never returns the email', async () => {
    const r = await c.call('ana', 'POST', `${A}/users`, {
      username: '  Ana Souza  ',
      email: 'ana@example.com',
      main_track: 'frontend',
      github_username: 'ana-souza',
      user_id: 'someone-else',
    });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({
      user_id: 'ana',
      username: 'Ana Souza',
      avatar_url: null,
      main_track: 'frontend',
      github_username: 'ana-souza',
      badges: [],
      current_streak: 0,
      longest_streak: 0,
      total_conversations: 0,
      total_missions_completed: 0,
      progress: {
        total_xp: 0,
        current_level: 1,
        current_rank: 'novato',
        xp_to_next_level: 100,
        progress_percentage: 0,
        rank_info: {
          level: 'novato',
          name: 'Novato',
          color: '#6B7280',
          icon: 'seedling',
          min_xp: 0,
          max_xp: 99,
        },
      },
    });
    expect(r.json).not.toHaveProperty('email');
    expect(Date.parse(r.json.enrolled_at)).not.toBeNaN();
    const [row] = await q<{ email: string; user_id: string }>(
      tdb,
      sql`select email, user_id from academy_users where user_id = 'ana'`,
    );
    expect(row).toEqual({ email: 'ana@example.com', user_id: 'ana' });
    expect(await q(tdb, sql`select 1 from academy_users where user_id = 'someone-else'`)).toHaveLength(0);

    const pub = await c.call(null, 'GET', `${A}/users/ana`);
    expect(pub.status).toBe(200);
    expect(pub.json.username).toBe('Ana Souza');
    expect((await c.call(null, 'GET', `${A}/users/nobody`)).json.error.code).toBe('ACADEMY_USER_NOT_FOUND');
  });

  it('answers a second enrolment with 409 ALREADY_ENROLLED and changes nothing', async () => {
    const before = await counts(tdb);
    const r = await c.call('ana', 'POST', `${A}/users`, { username: 'Outro Nome', main_track: 'devops' });
    expect(r.status).toBe(409);
    expect(r.json.error.code).toBe('ALREADY_ENROLLED');
    expect(r.json.error.details.user).toMatchObject({
      user_id: 'ana',
      username: 'Ana Souza',
      main_track: 'frontend',
    });
    expect(await counts(tdb)).toEqual(before);
  });

  it('rejects bad input with 4xx in the envelope and writes nothing', async () => {
    const before = await counts(tdb);
    const bad: Array<[string, string, unknown, number]> = [
      ['POST', '/users', { username: '  ab  ' }, 422],
      ['POST', '/users', { username: 'valid name', email: 'no-at-sign' }, 422],
      ['POST', '/users', { username: 'valid name', email: 'a@b@c' }, 422],
      ['POST', '/users', { username: 'valid name', main_track: 'mobile' }, 422],
      ['POST', '/users', { username: 'valid name', github_username: '-bad-' }, 422],
      ['POST', '/users', { username: 'x'.repeat(256) }, 422],
      ['POST', '/users', '{"username": ', 400],
      ['POST', '/conversations', { agent_name: 'zumbi' }, 422],
      ['POST', '/conversations', { agent_name: 'zumbi', track: 'backend', difficulty: 'insane' }, 422],
      ['POST', '/conversations', { agent_name: 'zumbi', track: 'backend', topic: 't'.repeat(256) }, 422],
      ['GET', '/users/me/xp-history?limit=0', undefined, 422],
      ['GET', '/users/me/xp-history?limit=101', undefined, 422],
      ['GET', '/users/me/xp-history?offset=-1', undefined, 422],
      ['GET', '/conversations?status=paused', undefined, 422],
      ['GET', '/missions?featured_only=yes', undefined, 422],
      ['GET', '/leaderboard?period=yearly', undefined, 422],
      ['GET', '/leaderboard?limit=101', undefined, 422],
      ['GET', '/badges?include_secret=1', undefined, 422],
    ];
    for (const [method, path, body, status] of bad) {
      const r = await c.call('ana', method, `${A}${path}`, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(status);
      expect(r.json.error.code).toBe(status === 400 ? 'INVALID_JSON' : 'VALIDATION_ERROR');
    }
    const unknown = await c.call('ana', 'POST', `${A}/conversations`, {
      agent_name: 'pele',
      track: 'backend',
    });
    expect(unknown.status).toBe(422);
    expect(unknown.json.error.code).toBe('UNKNOWN_AGENT');
    expect(unknown.json.error.details.valid_agent_names).toHaveLength(17);
    const notATeacher = await c.call('ana', 'POST', `${A}/conversations`, {
      agent_name: 'tarsila',
      track: 'ia',
    });
    expect(notATeacher.json.error.code).toBe('UNKNOWN_AGENT');
    const text = await fetch(`${c.base}${A}/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await c.token('ana')}`, 'content-type': 'text/plain' },
      body: 'username=x',
    });
    expect(text.status).toBe(415);
    expect(await counts(tdb)).toEqual(before);
  });

  it('answers an unknown or malformed id in a path with 404, never 5xx', async () => {
    for (const path of [
      '/conversations/not-a-uuid',
      '/conversations/00000000-0000-4000-8000-000000000000',
      "/conversations/'%20or%201=1--",
      '/conversations/not-a-uuid/messages',
    ]) {
      const r = await c.call('ana', 'GET', `${A}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.json.error.code).toBe('CONVERSATION_NOT_FOUND');
    }
    expect((await c.call(null, 'GET', `${A}/missions/nope`)).json.error.code).toBe('MISSION_NOT_FOUND');
    expect((await c.call(null, 'GET', `${A}/agents/nope`)).json.error.code).toBe('TEACHER_NOT_FOUND');
  });
});

describe('teachers and tracks', () => {
  it('lists the seventeen teachers from the roster, by track, with aliases answered canonically', async () => {
    const all = (await c.call(null, 'GET', `${A}/agents`)).json;
    expect(all).toHaveLength(17);
    const zumbi = all.find((t: { name: string }) => t.name === 'zumbi');
    expect(zumbi).toMatchObject({
      display_name: 'Zumbi dos Palmares',
      avatar: '🛡️',
      tracks: ['backend', 'ia'],
      is_available: true,
    });
    const chatAgents = (await c.call(null, 'GET', '/api/v1/chat/agents')).json;
    for (const t of all) {
      const agent = chatAgents.find((a: { id: string }) => a.id === t.name);
      expect(agent, t.name).toBeDefined();
      expect(t.display_name).toBe(agent.name);
      expect(t.avatar).toBe(agent.avatar);
    }
    const frontend = (await c.call(null, 'GET', `${A}/agents?track=frontend`)).json.map(
      (t: { name: string }) => t.name,
    );
    expect(frontend.sort()).toEqual(['dandara', 'drummond', 'machado', 'oscar_niemeyer', 'santos_dumont']);
    for (const [alias, name] of [
      ['ayrton_senna', 'senna'],
      ['NIEMEYER', 'oscar_niemeyer'],
      ['quiteria', 'maria_quiteria'],
      ['Dumont', 'santos_dumont'],
    ]) {
      const r = await c.call(null, 'GET', `${A}/agents/${alias}`);
      expect(r.status).toBe(200);
      expect(r.json.name).toBe(name);
    }
    expect((await c.call(null, 'GET', `${A}/agents/tarsila`)).status).toBe(404);
  });

  it('lists the four tracks in order, every recommended agent a teacher', async () => {
    const tracks = (await c.call(null, 'GET', `${A}/tracks`)).json;
    expect(tracks.map((t: { id: string }) => t.id)).toEqual(['backend', 'frontend', 'ia', 'devops']);
    expect(tracks[3]).toMatchObject({ name: 'DevOps', icon: 'settings', color: '#F59E0B' });
    const names = new Set(
      (await c.call(null, 'GET', `${A}/agents`)).json.map((t: { name: string }) => t.name),
    );
    for (const t of tracks) for (const a of t.recommended_agents) expect(names.has(a), a).toBe(true);
  });
});

describe('conversations, XP and badges', () => {
  it('pays 5 for a start and 25 for the first_conversation badge, in one ledger chain', async () => {
    await enrol(c, 'bia');
    const r = await c.call('bia', 'POST', `${A}/conversations`, {
      agent_name: 'ayrton_senna',
      track: 'devops',
      topic: 'Filas',
      user_id: 'ana',
    });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({
      agent_name: 'senna',
      agent_display_name: 'Ayrton Senna',
      track: 'devops',
      topic: 'Filas',
      difficulty: 'beginner',
      title: 'Conversa com Ayrton Senna',
      messages_count: 0,
      xp_earned: 5,
      status: 'active',
      rating: null,
      feedback: null,
      completed_at: null,
      duration_minutes: 0,
      xp_awarded: 5,
    });
    expect(r.json.greeting).toContain('Senna');
    expect(r.json.badges_earned.map((b: { code: string }) => b.code)).toEqual(['first_conversation']);
    const [session] = await q<{ user_id: string; agent_id: string }>(
      tdb,
      sql`select user_id, agent_id from chat_sessions where id = ${r.json.session_id}`,
    );
    expect(session).toEqual({ user_id: 'bia', agent_id: 'senna' });
    const rows = await expectLedgerIntact(tdb, c, 'bia');
    expect(rows.map((x) => [x.source_type, x.amount, x.balance_after])).toEqual([
      ['conversation_started', 5, 5],
      ['badge', 25, 30],
    ]);
    const second = await c.call('bia', 'POST', `${A}/conversations`, { agent_name: 'zumbi', track: 'ia' });
    expect(second.json).toMatchObject({ xp_awarded: 5, badges_earned: [] });
    await expectLedgerIntact(tdb, c, 'bia');
    const me = (await c.call('bia', 'GET', `${A}/users/me`)).json;
    expect(me.progress.total_xp).toBe(35);
    expect(me.total_conversations).toBe(2);
    expect(me.badges.map((b: { code: string }) => b.code)).toEqual(['first_conversation']);
    expect(me.current_streak).toBe(1);
    const list = (await c.call('bia', 'GET', `${A}/conversations`)).json;
    expect(list.map((x: { id: string }) => x.id)).toEqual([second.json.id, r.json.id]);
    const byAlias = (await c.call('bia', 'GET', `${A}/conversations?agent_name=ayrton_senna`)).json;
    expect(byAlias.map((x: { id: string }) => x.id)).toEqual([r.json.id]);
  });

  it('completes once (50 for rating 5), then 409 with the stored conversation and nothing paid', async () => {
    await enrol(c, 'caio');
    const conv = (await c.call('caio', 'POST', `${A}/conversations`, { agent_name: 'zumbi', track: 'ia' }))
      .json;
    const done = await c.call('caio', 'POST', `${A}${'/conversations/'}${conv.id}/complete`, {
      rating: 5,
      feedback: 'Excelente',
    });
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({
      status: 'completed',
      rating: 5,
      feedback: 'Excelente',
      xp_earned: 55,
      xp_awarded: 50,
    });
    const before = await counts(tdb);
    const again = await c.call('caio', 'POST', `${A}/conversations/${conv.id}/complete`, { rating: 1 });
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('CONVERSATION_COMPLETED');
    expect(again.json.error.details.conversation).toMatchObject({
      id: conv.id,
      rating: 5,
      status: 'completed',
    });
    expect(await counts(tdb)).toEqual(before);
    // A completed conversation takes no more messages, and writes nothing.
    const msg = await c.call('caio', 'POST', `${A}/conversations/${conv.id}/messages`, {
      message: 'mais uma',
    });
    expect(msg.status).toBe(409);
    expect(msg.json.error.code).toBe('CONVERSATION_COMPLETED');
    expect(await counts(tdb)).toEqual(before);
    const rows = await expectLedgerIntact(tdb, c, 'caio');
    expect(rows.map((x) => x.amount)).toEqual([5, 25, 50]);
  });

  it('pays 20 for a completion without rating 5; concurrent completions pay once', async () => {
    await enrol(c, 'davi');
    const conv = (
      await c.call('davi', 'POST', `${A}/conversations`, { agent_name: 'anita', track: 'backend' })
    ).json;
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        c.call('davi', 'POST', `${A}/conversations/${conv.id}/complete`, { rating: 3 }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
    expect(results.find((r) => r.status === 200)!.json.xp_awarded).toBe(20);
    const rows = await expectLedgerIntact(tdb, c, 'davi');
    expect(rows.map((x) => x.amount)).toEqual([5, 25, 20]);
  });

  it('keeps the ledger chain intact under parallel conversation starts (no deadlock, no 5xx)', async () => {
    await enrol(c, 'eva');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        c.call('eva', 'POST', `${A}/conversations`, {
          agent_name: i % 2 ? 'zumbi' : 'machado',
          track: 'backend',
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(results.filter((r) => r.json.badges_earned.length === 1)).toHaveLength(1);
    const rows = await expectLedgerIntact(tdb, c, 'eva');
    expect(rows).toHaveLength(21);
    expect(rows.at(-1)!.balance_after).toBe(20 * 5 + 25);
    const stats = (await c.call('eva', 'GET', `${A}/stats/me`)).json;
    expect(stats).toMatchObject({
      total_xp: 125,
      current_level: 2,
      current_rank: 'aprendiz',
      total_conversations: 20,
      completed_conversations: 0,
      badges_count: 1,
      agents_talked_to: ['machado', 'zumbi'],
    });
  });

  it('checks the rank badges after every award, so one bonus can earn the next badge', async () => {
    await enrol(c, 'fabi');
    // An operator grant written straight to the ledger (as a correction would be): 4700 XP.
    await tdb.handle.db.transaction(async (tx) => {
      await tx.execute(sql`update academy_users set total_xp = 4700 where user_id = 'fabi'`);
      await tx.execute(sql`insert into academy_xp_transactions (user_id, amount, balance_after, source_type, source_id)
        values ('fabi', 4700, 4700, 'mission', 'operator-grant')`);
    });
    const r = await c.call('fabi', 'POST', `${A}/conversations`, { agent_name: 'abaporu', track: 'devops' });
    expect(r.json.xp_awarded).toBe(5);
    expect(r.json.badges_earned.map((b: { code: string }) => b.code)).toEqual([
      'mentor_badge',
      'architect_badge',
      'first_conversation',
    ]);
    const rows = await expectLedgerIntact(tdb, c, 'fabi');
    expect(rows.map((x) => [x.source_id, x.balance_after])).toEqual([
      ['operator-grant', 4700],
      [r.json.id, 4705],
      ['mentor_badge', 5005],
      ['architect_badge', 5505],
      ['first_conversation', 5530],
    ]);
    const me = (await c.call('fabi', 'GET', `${A}/users/me`)).json;
    expect(me.progress).toMatchObject({
      total_xp: 5530,
      current_level: 56,
      current_rank: 'arquiteto',
      xp_to_next_level: 70,
      progress_percentage: 30,
      rank_info: { name: 'Arquiteto', max_xp: null },
    });
    expect((await c.call('fabi', 'GET', `${A}/badges/me`)).json.map((b: { code: string }) => b.code)).toEqual(
      ['mentor_badge', 'architect_badge', 'first_conversation'],
    );
  });

  it('hides a conversation from everyone but its owner, on academy and chat routes alike', async () => {
    const conv = (await c.call('bia', 'POST', `${A}/conversations`, { agent_name: 'nana', track: 'ia' }))
      .json;
    await enrol(c, 'intruso');
    const before = await counts(tdb);
    for (const [method, path, body] of [
      ['GET', `${A}/conversations/${conv.id}`],
      ['GET', `${A}/conversations/${conv.id}/messages`],
      ['POST', `${A}/conversations/${conv.id}/complete`, { rating: 5 }],
      ['POST', `${A}/conversations/${conv.id}/messages`, { message: 'oi' }],
      ['POST', `${A}/conversations/${conv.id}/messages/stream`, { message: 'oi' }],
    ] as Array<[string, string, unknown?]>) {
      const r = await c.call('intruso', method, path, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json.error.code).toBe('CONVERSATION_NOT_FOUND');
    }
    for (const [method, path, body] of [
      ['GET', `/api/v1/chat/sessions/${conv.session_id}`],
      ['GET', `/api/v1/chat/history/${conv.session_id}`],
      ['POST', '/api/v1/chat/message', { message: 'oi', session_id: conv.session_id }],
    ] as Array<[string, string, unknown?]>) {
      const r = await c.call('intruso', method, path, body);
      expect(r.status, `${method} ${path}`).toBe(404);
    }
    expect((await c.call('intruso', 'GET', `${A}/conversations`)).json).toEqual([]);
    expect(await counts(tdb)).toEqual(before);
  });
});

describe('missions', () => {
  it('serves /missions/me as the caller’s list, never as a mission id', async () => {
    await enrol(c, 'gil');
    const r = await c.call('gil', 'GET', `${A}/missions/me`);
    expect(r.status).toBe(200);
    expect(r.json).toEqual([]);
  });

  it('lists the seeded missions by id with their filters', async () => {
    const all = (await c.call(null, 'GET', `${A}/missions`)).json;
    expect(all.map((m: { id: string }) => m.id)).toEqual([
      'mission_001',
      'mission_002',
      'mission_003',
      'mission_004',
      'mission_005',
    ]);
    expect(all[2]).toMatchObject({
      code: 'fix_simple_bug',
      title: 'Corrigir Bug Simples',
      xp_reward: 25,
      required_level: 2,
      prerequisites: ['fix_typo_docs'],
      github_issue_url: 'https://github.com/anderson-ufrj/cidadao.ai-backend/issues',
      recommended_agent: 'anita',
      is_featured: true,
    });
    expect(all[4].recommended_agent).toBe('senna');
    const featured = (await c.call(null, 'GET', `${A}/missions?featured_only=true`)).json;
    expect(featured.map((m: { id: string }) => m.id)).toEqual(['mission_001', 'mission_002', 'mission_003']);
    const front = (await c.call(null, 'GET', `${A}/missions?track=frontend`)).json;
    expect(front.map((m: { code: string }) => m.code)).toEqual(['implement_component']);
    expect(
      (await c.call(null, 'GET', `${A}/missions?limit=2&offset=3`)).json.map((m: { id: string }) => m.id),
    ).toEqual(['mission_004', 'mission_005']);
    expect((await c.call(null, 'GET', `${A}/missions/optimize_query`)).json.id).toBe('mission_005');
    const badges = (await c.call(null, 'GET', `${A}/badges`)).json;
    expect(badges.map((b: { code: string }) => b.code)).toHaveLength(8);
    expect(badges.find((b: { code: string }) => b.code === 'architect_badge')).toMatchObject({
      xp_bonus: 500,
      rarity: 'legendary',
      category: 'special',
      is_secret: false,
    });
    expect((await c.call(null, 'GET', `${A}/badges?category=streak`)).json).toHaveLength(2);
  });

  it('gates by level and prerequisites, runs once per user, and pays once with its badge', async () => {
    await enrol(c, 'hugo');
    const low = await c.call('hugo', 'POST', `${A}/missions/mission_003/start`);
    expect(low.status).toBe(403);
    expect(low.json.error).toMatchObject({
      code: 'LEVEL_TOO_LOW',
      details: { required_level: 2, current_level: 1 },
    });
    expect((await c.call('hugo', 'POST', `${A}/missions/mission_001/complete`, {})).json.error.code).toBe(
      'MISSION_NOT_STARTED',
    );

    const started = await c.call('hugo', 'POST', `${A}/missions/fix_typo_docs/start`);
    expect(started.status).toBe(201);
    expect(started.json).toMatchObject({
      status: 'in_progress',
      xp_awarded: 0,
      mission: { id: 'mission_001' },
    });
    const twice = await c.call('hugo', 'POST', `${A}/missions/mission_001/start`);
    expect(twice.status).toBe(409);
    expect(twice.json.error).toMatchObject({
      code: 'MISSION_ALREADY_STARTED',
      details: { user_mission: { id: started.json.id } },
    });

    const bad = await c.call('hugo', 'POST', `${A}/missions/mission_001/complete`, {
      pull_request_url: 'ftp://x',
    });
    expect(bad.status).toBe(422);
    const done = await c.call('hugo', 'POST', `${A}/missions/mission_001/complete`, {
      pull_request_url: 'https://github.com/x/y/pull/1',
      notes: 'feito',
    });
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({
      status: 'completed',
      xp_awarded: 10,
      pull_request_url: 'https://github.com/x/y/pull/1',
      notes: 'feito',
      mission: { times_completed: 1 },
    });
    expect(done.json.badges_earned.map((b: { code: string }) => b.code)).toEqual(['first_mission']);
    const before = await counts(tdb);
    const again = await c.call('hugo', 'POST', `${A}/missions/mission_001/complete`, {});
    expect(again.json.error.code).toBe('MISSION_ALREADY_COMPLETED');
    const restart = await c.call('hugo', 'POST', `${A}/missions/mission_001/start`);
    expect(restart.json.error.code).toBe('MISSION_ALREADY_COMPLETED');
    expect(await counts(tdb)).toEqual(before);
    const rows = await expectLedgerIntact(tdb, c, 'hugo');
    expect(rows.map((x) => [x.source_type, x.amount])).toEqual([
      ['mission', 10],
      ['badge', 50],
    ]);
    const mine = (await c.call('hugo', 'GET', `${A}/missions/me?status=completed`)).json;
    expect(mine.map((m: { mission: { id: string } }) => m.mission.id)).toEqual(['mission_001']);
    expect((await c.call('hugo', 'GET', `${A}/missions/me?status=in_progress`)).json).toEqual([]);
  });

  it('names the missing prerequisites once the level allows the mission', async () => {
    await enrol(c, 'iris');
    for (let i = 0; i < 2; i++) {
      const conv = (await c.call('iris', 'POST', `${A}/conversations`, { agent_name: 'zumbi', track: 'ia' }))
        .json;
      await c.call('iris', 'POST', `${A}/conversations/${conv.id}/complete`, { rating: 5 });
    }
    expect((await c.call('iris', 'GET', `${A}/users/me`)).json.progress.current_level).toBe(2);
    const r = await c.call('iris', 'POST', `${A}/missions/mission_003/start`);
    expect(r.status).toBe(403);
    expect(r.json.error).toMatchObject({
      code: 'PREREQUISITES_MISSING',
      details: { missing: ['fix_typo_docs'] },
    });
    expect(await q(tdb, sql`select 1 from academy_user_missions where user_id = 'iris'`)).toHaveLength(0);
  });
});

describe('migration seeds', () => {
  it('re-running the seeds never duplicates a row or resets a count', async () => {
    const { readFileSync } = await import('node:fs');
    const file = readFileSync(new URL('../migrations/0002_academy.sql', import.meta.url), 'utf8');
    const inserts = file
      .split('--> statement-breakpoint')
      .map((s) => s.trim())
      .filter((s) => /INSERT INTO "academy_(missions|badges)"/.test(s));
    expect(inserts).toHaveLength(2);
    const before = await q(tdb, sql`select count(*)::int as n from academy_missions`);
    const times = (await c.call(null, 'GET', `${A}/missions/mission_001`)).json.times_completed;
    for (const s of inserts) await tdb.handle.db.execute(sql.raw(s));
    expect(await q(tdb, sql`select count(*)::int as n from academy_missions`)).toEqual(before);
    expect((await q<{ n: number }>(tdb, sql`select count(*)::int as n from academy_badges`))[0]!.n).toBe(8);
    expect((await c.call(null, 'GET', `${A}/missions/mission_001`)).json.times_completed).toBe(times);
  });
});
