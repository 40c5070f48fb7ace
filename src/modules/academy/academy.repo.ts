// Academy queries for profiles, badges, conversations and history; every "me" query takes the caller's sub.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, rowsOf, type Tx } from '../../db/client.js';
import type { BadgeRow } from './ledger.js';

type Exec = Pick<Db, 'execute'>;

export interface UserRow {
  id: string;
  user_id: string;
  username: string;
  avatar_url: string | null;
  main_track: string;
  github_username: string | null;
  total_xp: number;
  enrolled_at: Date | string;
  total_conversations: number;
  completed_conversations: number;
  total_missions: number;
  total_missions_completed: number;
}

export interface ConversationRow {
  id: string;
  user_id: string;
  session_id: string;
  agent_name: string;
  track: string;
  topic: string | null;
  difficulty: string;
  status: 'active' | 'completed';
  rating: number | null;
  feedback: string | null;
  started_at: Date | string;
  completed_at: Date | string | null;
  xp_earned: number;
}

export interface XpRow {
  id: number | string;
  amount: number;
  balance_after: number;
  source_type: string;
  source_id: string;
  description: string;
  created_at: Date | string;
}

export async function insertUser(
  db: Exec,
  u: {
    userId: string;
    username: string;
    email: string | null;
    mainTrack: string;
    githubUsername: string | null;
  },
): Promise<boolean> {
  const rows = rowsOf<{ id: string }>(
    await db.execute(sql`
      insert into academy_users (user_id, username, email, main_track, github_username)
      values (${u.userId}, ${u.username}, ${u.email}, ${u.mainTrack}, ${u.githubUsername})
      on conflict (user_id) do nothing
      returning id`),
  );
  return rows.length > 0;
}

export async function getUser(db: Exec, userId: string): Promise<UserRow | undefined> {
  return rowsOf<UserRow>(
    await db.execute(sql`
      select u.id, u.user_id, u.username, u.avatar_url, u.main_track, u.github_username, u.total_xp, u.enrolled_at,
        (select count(*)::int from academy_conversations c where c.user_id = u.user_id) as total_conversations,
        (select count(*)::int from academy_conversations c
          where c.user_id = u.user_id and c.status = 'completed') as completed_conversations,
        (select count(*)::int from academy_user_missions m where m.user_id = u.user_id) as total_missions,
        (select count(*)::int from academy_user_missions m
          where m.user_id = u.user_id and m.status = 'completed') as total_missions_completed
      from academy_users u where u.user_id = ${userId}`),
  )[0];
}

export async function earnedBadges(db: Exec, userId: string): Promise<BadgeRow[]> {
  return rowsOf<BadgeRow>(
    await db.execute(sql`
      select b.code, b.name, b.description, b.icon, b.color, b.rarity, b.category, b.xp_bonus, b.is_secret,
             ub.earned_at
      from academy_user_badges ub join academy_badges b on b.code = ub.badge_code
      where ub.user_id = ${userId} order by ub.id`),
  );
}

export async function listBadges(db: Exec, q: { category?: string; includeSecret: boolean }) {
  const category = q.category ? sql`and category = ${q.category}` : sql``;
  const secret = q.includeSecret ? sql`` : sql`and not is_secret`;
  return rowsOf<BadgeRow>(
    await db.execute(sql`
      select code, name, description, icon, color, rarity, category, xp_bonus, is_secret
      from academy_badges where true ${category} ${secret} order by created_at, code`),
  );
}

/** The UTC calendar days with an award, newest first, and today's UTC date, per the database clock. */
export async function awardDays(db: Exec, userId: string): Promise<{ days: string[]; today: string }> {
  const [days, today] = await Promise.all([
    db.execute(sql`
      select distinct to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as d
      from academy_xp_transactions where user_id = ${userId} order by d desc`),
    db.execute(sql`select to_char(now() at time zone 'UTC', 'YYYY-MM-DD') as d`),
  ]);
  return { days: rowsOf<{ d: string }>(days).map((r) => r.d), today: rowsOf<{ d: string }>(today)[0]!.d };
}

export async function xpHistory(db: Exec, userId: string, limit: number, offset: number) {
  return rowsOf<XpRow>(
    await db.execute(sql`
      select id, amount, balance_after, source_type, source_id, description, created_at
      from academy_xp_transactions where user_id = ${userId}
      order by id desc limit ${limit} offset ${offset}`),
  );
}

/** What each of these user messages earned (the 2 XP of a completed reply). */
export async function messageAwards(db: Exec, userId: string, messageIds: string[]) {
  if (messageIds.length === 0) return new Map<string, number>();
  const rows = rowsOf<{ source_id: string; amount: number }>(
    await db.execute(sql`
      select source_id, amount from academy_xp_transactions
      where user_id = ${userId} and source_type = 'conversation_message'
        and source_id in (${sql.join(
          messageIds.map((id) => sql`${id}`),
          sql`, `,
        )})`),
  );
  return new Map(rows.map((r) => [r.source_id, Number(r.amount)]));
}

const CONVERSATION_COLS = sql`c.id, c.user_id, c.session_id, c.agent_name, c.track, c.topic, c.difficulty, c.status,
  c.rating, c.feedback, c.started_at, c.completed_at,
  (select coalesce(sum(x.amount), 0)::int from academy_xp_transactions x
    where x.conversation_id = c.id and x.source_type <> 'badge') as xp_earned`;

export async function insertConversation(
  tx: Tx,
  c: {
    id: string;
    userId: string;
    sessionId: string;
    agentName: string;
    track: string;
    topic: string | null;
    difficulty: string;
  },
): Promise<void> {
  await tx.execute(sql`
    insert into academy_conversations (id, user_id, session_id, agent_name, track, topic, difficulty)
    values (${c.id}, ${c.userId}, ${c.sessionId}, ${c.agentName}, ${c.track}, ${c.topic}, ${c.difficulty})`);
}

export async function getConversation(db: Exec, id: string, userId: string) {
  return rowsOf<ConversationRow>(
    await db.execute(sql`
      select ${CONVERSATION_COLS} from academy_conversations c where c.id = ${id} and c.user_id = ${userId}`),
  )[0];
}

export async function listConversations(
  db: Exec,
  userId: string,
  q: { status?: string; agentName?: string; limit: number; offset: number },
) {
  const filters: SQL[] = [sql`c.user_id = ${userId}`];
  if (q.status) filters.push(sql`c.status = ${q.status}`);
  if (q.agentName) filters.push(sql`c.agent_name = ${q.agentName}`);
  return rowsOf<ConversationRow>(
    await db.execute(sql`
      select ${CONVERSATION_COLS} from academy_conversations c where ${sql.join(filters, sql` and `)}
      order by c.started_at desc, c.id desc limit ${q.limit} offset ${q.offset}`),
  );
}

/** Completes an active conversation; undefined when it is not the caller's or not active. */
export async function completeConversation(
  tx: Tx,
  id: string,
  userId: string,
  r: { rating: number | null; feedback: string | null },
): Promise<boolean> {
  const rows = rowsOf<{ id: string }>(
    await tx.execute(sql`
      update academy_conversations set status = 'completed', rating = ${r.rating}, feedback = ${r.feedback},
        completed_at = now()
      where id = ${id} and user_id = ${userId} and status = 'active'
      returning id`),
  );
  return rows.length > 0;
}

/** The distinct teachers of the caller's conversations, sorted. */
export async function agentsTalkedTo(db: Exec, userId: string): Promise<string[]> {
  return rowsOf<{ agent_name: string }>(
    await db.execute(sql`
      select distinct agent_name from academy_conversations where user_id = ${userId} order by agent_name`),
  ).map((r) => r.agent_name);
}
