// Mission queries: the seeded catalogue, and each user's one row per mission.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, rowsOf, type Tx } from '../../db/client.js';

type Exec = Pick<Db, 'execute'>;

export interface MissionRow {
  id: string;
  code: string;
  title: string;
  description: string;
  track: string;
  difficulty: string;
  category: string;
  xp_reward: number;
  badge_reward: string | null;
  required_level: number;
  prerequisites: string[];
  github_issue_url: string | null;
  resources: unknown[];
  video_url: string | null;
  recommended_agent: string | null;
  is_featured: boolean;
  times_completed: number;
}

export interface UserMissionRow {
  id: string;
  mission_id: string;
  status: 'in_progress' | 'completed';
  started_at: Date | string;
  completed_at: Date | string | null;
  pull_request_url: string | null;
  notes: string | null;
  xp_awarded: number;
}

const MISSION_COLS = sql`m.id, m.code, m.title, m.description, m.track, m.difficulty, m.category, m.xp_reward,
  m.badge_reward, m.required_level, m.prerequisites, m.github_issue_url, m.resources, m.video_url,
  m.recommended_agent, m.is_featured,
  (select count(*)::int from academy_user_missions um
    where um.mission_id = m.id and um.status = 'completed') as times_completed`;

const USER_MISSION_COLS = sql.raw(
  'id, mission_id, status, started_at, completed_at, pull_request_url, notes, xp_awarded',
);

export async function listMissions(
  db: Exec,
  q: {
    track?: string;
    difficulty?: string;
    category?: string;
    featuredOnly: boolean;
    limit: number;
    offset: number;
  },
) {
  const filters: SQL[] = [sql`m.is_active`];
  if (q.track) filters.push(sql`m.track = ${q.track}`);
  if (q.difficulty) filters.push(sql`m.difficulty = ${q.difficulty}`);
  if (q.category) filters.push(sql`m.category = ${q.category}`);
  if (q.featuredOnly) filters.push(sql`m.is_featured`);
  return rowsOf<MissionRow>(
    await db.execute(sql`
      select ${MISSION_COLS} from academy_missions m where ${sql.join(filters, sql` and `)}
      order by m.id limit ${q.limit} offset ${q.offset}`),
  );
}

/** A mission by id or code. */
export async function getMission(db: Exec, idOrCode: string): Promise<MissionRow | undefined> {
  return rowsOf<MissionRow>(
    await db.execute(sql`
      select ${MISSION_COLS} from academy_missions m where m.id = ${idOrCode} or m.code = ${idOrCode}
      order by (m.id = ${idOrCode}) desc limit 1`),
  )[0];
}

export async function missionsByIds(db: Exec, ids: string[]): Promise<Map<string, MissionRow>> {
  if (ids.length === 0) return new Map();
  const rows = rowsOf<MissionRow>(
    await db.execute(sql`
      select ${MISSION_COLS} from academy_missions m where m.id in (${sql.join(
        ids.map((id) => sql`${id}`),
        sql`, `,
      )})`),
  );
  return new Map(rows.map((r) => [r.id, r]));
}

export async function userMissions(db: Exec, userId: string, status?: string) {
  const byStatus = status ? sql`and status = ${status}` : sql``;
  return rowsOf<UserMissionRow>(
    await db.execute(sql`
      select ${USER_MISSION_COLS} from academy_user_missions
      where user_id = ${userId} ${byStatus} order by started_at, id`),
  );
}

export async function getUserMission(db: Exec, userId: string, missionId: string) {
  return rowsOf<UserMissionRow>(
    await db.execute(sql`
      select ${USER_MISSION_COLS} from academy_user_missions
      where user_id = ${userId} and mission_id = ${missionId}`),
  )[0];
}

/** Codes among `codes` that the user has not completed. */
export async function missingPrerequisites(db: Exec, userId: string, codes: string[]): Promise<string[]> {
  if (codes.length === 0) return [];
  const done = new Set(
    rowsOf<{ code: string }>(
      await db.execute(sql`
        select m.code from academy_user_missions um join academy_missions m on m.id = um.mission_id
        where um.user_id = ${userId} and um.status = 'completed'`),
    ).map((r) => r.code),
  );
  return codes.filter((c) => !done.has(c));
}

export async function insertUserMission(tx: Tx, userId: string, missionId: string) {
  return rowsOf<UserMissionRow>(
    await tx.execute(sql`
      insert into academy_user_missions (user_id, mission_id) values (${userId}, ${missionId})
      returning ${USER_MISSION_COLS}`),
  )[0]!;
}

export async function completeUserMission(
  tx: Tx,
  id: string,
  c: { xpAwarded: number; pullRequestUrl: string | null; notes: string | null },
) {
  return rowsOf<UserMissionRow>(
    await tx.execute(sql`
      update academy_user_missions set status = 'completed', completed_at = now(), xp_awarded = ${c.xpAwarded},
        pull_request_url = ${c.pullRequestUrl}, notes = ${c.notes}
      where id = ${id} and status = 'in_progress'
      returning ${USER_MISSION_COLS}`),
  )[0];
}
