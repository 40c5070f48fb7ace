// Missions: level and prerequisite gating, one row per user and mission, paid once on completion.
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import { levelOf } from './academy.catalog.js';
import type * as s from './academy.schemas.js';
import { toBadge, toMission, toUserMission } from './academy.schemas.js';
import { award, withUserLock } from './ledger.js';
import * as repo from './missions.repo.js';

type In<T extends z.ZodType> = z.output<T>;

export interface MissionServiceDeps {
  db: Db;
  /** Throws ACADEMY_USER_NOT_FOUND when the caller never enrolled. */
  requireUser(userId: string): Promise<unknown>;
}

export function createMissionService(deps: MissionServiceDeps) {
  const { db } = deps;

  async function missionOrThrow(idOrCode: string) {
    const mission = await repo.getMission(db, idOrCode);
    if (!mission) throw new AppError('MISSION_NOT_FOUND');
    return mission;
  }

  return {
    async missions(q: In<typeof s.listMissionsSchema>) {
      return (await repo.listMissions(db, { ...q, featuredOnly: q.featured_only })).map(toMission);
    },

    async mission(idOrCode: string) {
      return toMission(await missionOrThrow(idOrCode));
    },

    async myMissions(userId: string, status?: string) {
      await deps.requireUser(userId);
      const rows = await repo.userMissions(db, userId, status);
      const missions = await repo.missionsByIds(db, [...new Set(rows.map((r) => r.mission_id))]);
      return rows.map((r) => toUserMission(r, missions.get(r.mission_id)!));
    },

    async startMission(userId: string, idOrCode: string) {
      await deps.requireUser(userId);
      const mission = await missionOrThrow(idOrCode);
      const row = await withUserLock(db, userId, async ({ tx, totalXp }) => {
        const existing = await repo.getUserMission(tx, userId, mission.id);
        if (existing) {
          const code =
            existing.status === 'completed' ? 'MISSION_ALREADY_COMPLETED' : 'MISSION_ALREADY_STARTED';
          throw new AppError(code, undefined, { user_mission: toUserMission(existing, mission) });
        }
        const level = levelOf(totalXp);
        if (level < mission.required_level) {
          throw new AppError('LEVEL_TOO_LOW', undefined, {
            required_level: mission.required_level,
            current_level: level,
          });
        }
        const missing = await repo.missingPrerequisites(tx, userId, mission.prerequisites ?? []);
        if (missing.length > 0) throw new AppError('PREREQUISITES_MISSING', undefined, { missing });
        return repo.insertUserMission(tx, userId, mission.id);
      });
      return toUserMission(row, mission);
    },

    async completeMission(userId: string, idOrCode: string, body: In<typeof s.completeMissionSchema>) {
      await deps.requireUser(userId);
      const mission = await missionOrThrow(idOrCode);
      const done = await withUserLock(db, userId, async (locked) => {
        const existing = await repo.getUserMission(locked.tx, userId, mission.id);
        if (!existing) throw new AppError('MISSION_NOT_STARTED');
        const row = await repo.completeUserMission(locked.tx, existing.id, {
          xpAwarded: mission.xp_reward,
          pullRequestUrl: body.pull_request_url ?? null,
          notes: body.notes ?? null,
        });
        if (!row) {
          throw new AppError('MISSION_ALREADY_COMPLETED', undefined, {
            user_mission: toUserMission(existing, mission),
          });
        }
        const paid = await award(
          locked,
          [
            {
              amount: mission.xp_reward,
              sourceType: 'mission',
              sourceId: mission.id,
              description: `Missao concluida: ${mission.title}`,
            },
          ],
          ['first_mission', ...(mission.badge_reward ? [mission.badge_reward] : [])],
        );
        return { row, paid };
      });
      // times_completed now counts this user too.
      const fresh = (await repo.getMission(db, mission.id))!;
      return { ...toUserMission(done.row, fresh), badges_earned: done.paid.badges.map(toBadge) };
    },
  };
}
