// Leaderboard and stats queries: periods are rolling windows over the ledger's created_at, read at query time.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../../db/client.js';

type Exec = Pick<Db, 'execute'>;

export type Period = 'daily' | 'weekly' | 'monthly' | 'all_time';

const WINDOW_DAYS: Record<Exclude<Period, 'all_time'>, number> = { daily: 1, weekly: 7, monthly: 30 };

export interface BoardRow {
  user_id: string;
  username: string;
  avatar_url: string | null;
  total_xp: number;
  period_xp: number;
  main_track: string;
  badges_count: number;
  weekly_xp: number;
}

const since = (days: number) => sql`now() - make_interval(days => ${days})`;

/**
 * One page of the board and the number of ranked users. All-time walks academy_users in index
 * order; a period sums the window's ledger rows from the (created_at, user_id, amount) index.
 */
export async function leaderboard(
  db: Exec,
  q: { period: Period; track?: string; limit: number },
): Promise<{ rows: BoardRow[]; total: number }> {
  const track = q.track ? sql`and u.main_track = ${q.track}` : sql``;
  let page: Omit<BoardRow, 'badges_count' | 'weekly_xp'>[];
  let total: number;
  if (q.period === 'all_time') {
    const [rows, count] = await Promise.all([
      db.execute(sql`
        select u.user_id, u.username, u.avatar_url, u.total_xp, u.total_xp as period_xp, u.main_track
        from academy_users u where true ${track}
        order by u.total_xp desc, u.enrolled_at, u.user_id limit ${q.limit}`),
      db.execute(sql`select count(*)::int as n from academy_users u where true ${track}`),
    ]);
    page = rowsOf(rows);
    total = rowsOf<{ n: number }>(count)[0]!.n;
  } else {
    const rows = rowsOf<(typeof page)[number] & { total_users: number }>(
      await db.execute(sql`
        with p as (
          select user_id, sum(amount)::int as period_xp from academy_xp_transactions
          where created_at > ${since(WINDOW_DAYS[q.period])} group by user_id
        )
        select u.user_id, u.username, u.avatar_url, u.total_xp, p.period_xp, u.main_track,
               count(*) over ()::int as total_users
        from p join academy_users u on u.user_id = p.user_id
        where p.period_xp > 0 ${track}
        order by p.period_xp desc, u.enrolled_at, u.user_id limit ${q.limit}`),
    );
    page = rows;
    // count(*) over () is taken before the limit: every ranked user; no rows means none.
    total = rows[0]?.total_users ?? 0;
  }
  const extras = await entryExtras(
    db,
    page.map((r) => r.user_id),
  );
  return {
    rows: page.map((r) => ({
      ...r,
      total_xp: Number(r.total_xp),
      period_xp: Number(r.period_xp),
      badges_count: extras.get(r.user_id)?.badges ?? 0,
      weekly_xp: extras.get(r.user_id)?.weekly ?? 0,
    })),
    total,
  };
}

/** Badge counts and the last 7 days' XP of the listed users. */
async function entryExtras(db: Exec, userIds: string[]) {
  const out = new Map<string, { badges: number; weekly: number }>();
  if (userIds.length === 0) return out;
  const ids = sql.join(
    userIds.map((id) => sql`${id}`),
    sql`, `,
  );
  // One range scan of the 7-day window for all listed users, not one per user.
  const rows = rowsOf<{ user_id: string; badges: number; weekly: number }>(
    await db.execute(sql`
      with w as (
        select user_id, sum(amount)::int as weekly from academy_xp_transactions
        where created_at > ${since(7)} and user_id in (${ids}) group by user_id
      ), b as (
        select user_id, count(*)::int as badges from academy_user_badges where user_id in (${ids}) group by user_id
      )
      select u.user_id, coalesce(b.badges, 0) as badges, coalesce(w.weekly, 0) as weekly
      from academy_users u left join w on w.user_id = u.user_id left join b on b.user_id = u.user_id
      where u.user_id in (${ids})`),
  );
  for (const r of rows) out.set(r.user_id, { badges: Number(r.badges), weekly: Number(r.weekly) });
  return out;
}

/** The caller's position in the board's order (no track filter); rank null when not ranked. */
export async function rankOf(db: Exec, userId: string, period: Period) {
  let query: SQL;
  if (period === 'all_time') {
    query = sql`
      select
        (select count(*)::int from academy_users) as total_users,
        (select count(*)::int + 1 from academy_users o
          where o.total_xp > u.total_xp
             or (o.total_xp = u.total_xp and (o.enrolled_at, o.user_id) < (u.enrolled_at, u.user_id))) as rank,
        u.total_xp as period_xp, u.total_xp
      from academy_users u where u.user_id = ${userId}`;
  } else {
    query = sql`
      with p as (
        select user_id, sum(amount)::int as period_xp from academy_xp_transactions
        where created_at > ${since(WINDOW_DAYS[period])} group by user_id
      ), r as (
        select p.user_id, p.period_xp,
               row_number() over (order by p.period_xp desc, u.enrolled_at, u.user_id)::int as rank
        from p join academy_users u on u.user_id = p.user_id where p.period_xp > 0
      )
      select (select count(*)::int from r) as total_users, r.rank, coalesce(r.period_xp, 0) as period_xp,
             u.total_xp
      from academy_users u left join r on r.user_id = u.user_id where u.user_id = ${userId}`;
  }
  return rowsOf<{ total_users: number; rank: number | null; period_xp: number; total_xp: number }>(
    await db.execute(query),
  )[0];
}

export async function stats(db: Exec) {
  const [totals, tracks] = await Promise.all([
    db.execute(sql`
      select
        (select count(*)::int from academy_users) as total_users,
        (select count(*)::int from academy_conversations) as total_conversations,
        (select count(*)::int from academy_user_missions where status = 'completed') as total_missions_completed,
        (select coalesce(sum(amount), 0)::bigint from academy_xp_transactions) as total_xp_distributed,
        (select count(distinct user_id)::int from academy_xp_transactions
          where created_at > now() - interval '24 hours') as active_users_today,
        (select coalesce(sum(amount), 0)::bigint from academy_xp_transactions
          where created_at > ${since(30)}) as xp_30d`),
    db.execute(sql`select main_track, count(*)::int as n from academy_users group by main_track`),
  ]);
  return {
    totals: rowsOf<{
      total_users: number;
      total_conversations: number;
      total_missions_completed: number;
      total_xp_distributed: string | number;
      active_users_today: number;
      xp_30d: string | number;
    }>(totals)[0]!,
    tracks: rowsOf<{ main_track: string; n: number }>(tracks),
  };
}
