import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { A, type Client, enrol, expectLedgerIntact, q, startAcademy } from './support/academy.js';
import { backends, createTestDb, createTestRedis, type TestDb } from './support/backends.js';

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

/**
 * Ledger rows awarded at fixed past times, written as an operator correction would be: each row
 * appended in time order with its balance_after, and total_xp kept equal to the sum.
 */
async function grant(sub: string, rows: Array<{ amount: number; ago: string }>) {
  await tdb.handle.db.transaction(async (tx) => {
    for (const [i, r] of rows.entries()) {
      await tx.execute(sql`
        with u as (
          update academy_users set total_xp = total_xp + ${r.amount} where user_id = ${sub} returning total_xp
        )
        insert into academy_xp_transactions (user_id, amount, balance_after, source_type, source_id, created_at)
        select ${sub}, ${r.amount}, u.total_xp, 'mission', ${`grant-${i}`}, now() - ${r.ago}::interval from u`);
    }
  });
}

const names = (board: { entries: Array<{ user_id: string }> }) => board.entries.map((e) => e.user_id);

describe('leaderboard periods from the ledger', () => {
  beforeAll(async () => {
    // Enrolled in this order, which breaks ties in period_xp.
    await enrol(c, 'u1', { main_track: 'backend' });
    await enrol(c, 'u2', { main_track: 'frontend' });
    await enrol(c, 'u3', { main_track: 'backend' });
    await enrol(c, 'u4', { main_track: 'ia' });
    await enrol(c, 'u5', { main_track: 'backend' });
    await grant('u1', [
      { amount: 300, ago: '40 days' },
      { amount: 10, ago: '2 hours' },
    ]);
    await grant('u2', [{ amount: 100, ago: '3 days' }]);
    await grant('u3', [
      { amount: 50, ago: '20 days' },
      { amount: 60, ago: '10 hours' },
    ]);
    await grant('u5', [{ amount: 10, ago: '1 hour' }]);
  });

  it('ranks all_time by total_xp over every enrolled user, 0 included', async () => {
    const r = await c.call(null, 'GET', `${A}/leaderboard`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ period: 'all_time', track: null, total_users: 5 });
    expect(Date.parse(r.json.updated_at)).not.toBeNaN();
    expect(
      r.json.entries.map((e: Record<string, unknown>) => [
        e.rank,
        e.user_id,
        e.total_xp,
        e.period_xp,
        e.weekly_xp,
      ]),
    ).toEqual([
      [1, 'u1', 310, 310, 10],
      [2, 'u3', 110, 110, 60],
      [3, 'u2', 100, 100, 100],
      [4, 'u5', 10, 10, 10],
      [5, 'u4', 0, 0, 0],
    ]);
    expect(r.json.entries[0]).toMatchObject({
      username: 'user u1',
      avatar_url: null,
      current_rank: 'aprendiz',
      main_track: 'backend',
      badges_count: 0,
      change: 0,
    });
    const top2 = (await c.call(null, 'GET', `${A}/leaderboard?limit=2`)).json;
    expect(names(top2)).toEqual(['u1', 'u3']);
    expect(top2.total_users).toBe(5);
  });

  it('ranks daily, weekly and monthly by the XP of rolling windows, over users with XP in them', async () => {
    const daily = (await c.call(null, 'GET', `${A}/leaderboard?period=daily`)).json;
    expect(daily.entries.map((e: Record<string, unknown>) => [e.user_id, e.period_xp])).toEqual([
      ['u3', 60],
      ['u1', 10],
      ['u5', 10],
    ]);
    expect(daily.total_users).toBe(3);
    const weekly = (await c.call(null, 'GET', `${A}/leaderboard?period=weekly`)).json;
    expect(weekly.entries.map((e: Record<string, unknown>) => [e.user_id, e.period_xp])).toEqual([
      ['u2', 100],
      ['u3', 60],
      ['u1', 10],
      ['u5', 10],
    ]);
    const monthly = (await c.call(null, 'GET', `${A}/leaderboard?period=monthly&limit=3`)).json;
    expect(
      monthly.entries.map((e: Record<string, unknown>) => [e.rank, e.user_id, e.period_xp, e.total_xp]),
    ).toEqual([
      [1, 'u3', 110, 110],
      [2, 'u2', 100, 100],
      [3, 'u1', 10, 310],
    ]);
    expect(monthly.total_users).toBe(4);
    const backendWeek = (await c.call(null, 'GET', `${A}/leaderboard?period=weekly&track=backend`)).json;
    expect(backendWeek.entries.map((e: Record<string, unknown>) => [e.rank, e.user_id])).toEqual([
      [1, 'u3'],
      [2, 'u1'],
      [3, 'u5'],
    ]);
    expect(backendWeek).toMatchObject({ total_users: 3, track: 'backend', period: 'weekly' });
    const iaDaily = (await c.call(null, 'GET', `${A}/leaderboard?period=daily&track=ia`)).json;
    expect(iaDaily).toMatchObject({ entries: [], total_users: 0 });
  });

  it('gives the caller’s rank and percentile in the same order, or null when not ranked', async () => {
    const expectRank = async (sub: string, period: string, want: Record<string, unknown>) => {
      const r = await c.call(sub, 'GET', `${A}/leaderboard/me?period=${period}`);
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ period, ...want });
    };
    await expectRank('u1', 'all_time', {
      rank: 1,
      total_users: 5,
      percentile: 100,
      period_xp: 310,
      total_xp: 310,
    });
    await expectRank('u4', 'all_time', {
      rank: 5,
      total_users: 5,
      percentile: 20,
      period_xp: 0,
      total_xp: 0,
    });
    await expectRank('u5', 'daily', {
      rank: 3,
      total_users: 3,
      percentile: 33.3,
      period_xp: 10,
      total_xp: 10,
    });
    await expectRank('u4', 'daily', { rank: null, total_users: 3, percentile: 0, period_xp: 0, total_xp: 0 });
    await expectRank('u1', 'monthly', {
      rank: 3,
      total_users: 4,
      percentile: 50,
      period_xp: 10,
      total_xp: 310,
    });
    // No track filter on /me: u5 is third overall this week, not third among backend users.
    await expectRank('u5', 'weekly', {
      rank: 4,
      total_users: 4,
      percentile: 25,
      period_xp: 10,
      total_xp: 10,
    });
  });

  it('computes the stats windows from the ledger', async () => {
    const r = await c.call(null, 'GET', `${A}/stats`);
    expect(r.json).toEqual({
      total_users: 5,
      total_conversations: 0,
      total_missions_completed: 0,
      total_xp_distributed: 530,
      active_users_today: 3,
      top_track: 'backend',
      avg_daily_xp: 7.67,
    });
    for (const sub of ['u1', 'u2', 'u3', 'u5']) await expectLedgerIntact(tdb, c, sub);
  });

  it('derives streaks from the UTC days of the awards', async () => {
    await enrol(c, 'streaker');
    // Runs of 4 days (13..10 days ago) and of 3 days (2 days ago .. today).
    await tdb.handle.db.transaction(async (tx) => {
      let total = 0;
      for (const [i, days] of [13, 12, 11, 10, 2, 1, 0].entries()) {
        total += 5;
        const at =
          days === 0 ? sql`now()` : sql`date_trunc('day', now(), 'UTC') - make_interval(days => ${days})`;
        await tx.execute(sql`
          insert into academy_xp_transactions (user_id, amount, balance_after, source_type, source_id, created_at)
          values ('streaker', 5, ${total}, 'mission', ${`day-${i}`}, ${at})`);
      }
      await tx.execute(sql`update academy_users set total_xp = ${total} where user_id = 'streaker'`);
    });
    const me = (await c.call('streaker', 'GET', `${A}/users/me`)).json;
    expect([me.current_streak, me.longest_streak]).toEqual([3, 4]);
    const stats = (await c.call('streaker', 'GET', `${A}/stats/me`)).json;
    expect([stats.current_streak, stats.longest_streak]).toEqual([3, 4]);

    await enrol(c, 'lapsed');
    await grant('lapsed', [
      { amount: 5, ago: '3 days' },
      { amount: 5, ago: '4 days' },
    ]);
    const lapsed = (await c.call('lapsed', 'GET', `${A}/users/me`)).json;
    expect([lapsed.current_streak, lapsed.longest_streak]).toEqual([0, 2]);
  });
});

describe('the leaderboard at scale', () => {
  it.skipIf(!backends().databaseUrl)(
    'is served from the window index at 100,000 ledger rows',
    async () => {
      // 1,000 users, 100,000 rows spread over 90 days.
      await tdb.handle.db.execute(sql`
        insert into academy_users (user_id, username, main_track, total_xp)
        select 'bulk-' || g, 'bulk ' || g, (array['backend','frontend','ia','devops'])[1 + g % 4], 0
        from generate_series(1, 1000) g`);
      await tdb.handle.db.execute(sql`
        insert into academy_xp_transactions (user_id, amount, balance_after, source_type, source_id, created_at)
        select 'bulk-' || (1 + g % 1000), 1 + g % 7, 1, 'mission', 'bulk-' || g,
               now() - make_interval(secs => g * 77.76)
        from generate_series(1, 100000) g`);
      await tdb.handle.db.execute(sql`vacuum analyze academy_xp_transactions`);
      await tdb.handle.db.execute(sql`vacuum analyze academy_users`);
      const plan = async (days: number) =>
        (
          await q<{ 'QUERY PLAN': string }>(
            tdb,
            sql`explain
              with p as (
                select user_id, sum(amount)::int as period_xp from academy_xp_transactions
                where created_at > now() - make_interval(days => ${days}) group by user_id
              )
              select u.user_id, p.period_xp from p join academy_users u on u.user_id = p.user_id
              order by p.period_xp desc, u.enrolled_at, u.user_id limit 10`,
          )
        )
          .map((r) => r['QUERY PLAN'])
          .join('\n');
      for (const days of [1, 7]) {
        const text = await plan(days);
        expect(text, text).toMatch(/Index Only Scan using academy_xp_window_idx/);
      }
      const daily = await c.call(null, 'GET', `${A}/leaderboard?period=daily`);
      expect(daily.status).toBe(200);
      expect(daily.json.entries).toHaveLength(10);
    },
    60_000,
  );
});
