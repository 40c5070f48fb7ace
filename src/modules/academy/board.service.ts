// Leaderboard and stats: rankings and totals read from the ledger and the profiles at query time.
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { progressOf, TRACKS } from './academy.catalog.js';
import type * as s from './academy.schemas.js';
import * as board from './board.repo.js';

type In<T extends z.ZodType> = z.output<T>;

export interface BoardServiceDeps {
  db: Db;
  /** Throws ACADEMY_USER_NOT_FOUND when the caller never enrolled. */
  requireUser(userId: string): Promise<unknown>;
}

export function createBoardService(deps: BoardServiceDeps) {
  const { db, requireUser } = deps;
  return {
    async leaderboard(q: In<typeof s.leaderboardSchema>) {
      const { rows, total } = await board.leaderboard(db, q);
      return {
        entries: rows.map((r, i) => ({
          rank: i + 1,
          user_id: r.user_id,
          username: r.username,
          avatar_url: r.avatar_url,
          total_xp: r.total_xp,
          period_xp: r.period_xp,
          weekly_xp: r.weekly_xp,
          current_rank: progressOf(r.total_xp).current_rank,
          main_track: r.main_track,
          badges_count: r.badges_count,
          change: 0,
        })),
        total_users: total,
        period: q.period,
        track: q.track ?? null,
        updated_at: new Date().toISOString(),
      };
    },

    async myRank(userId: string, period: board.Period) {
      await requireUser(userId);
      const r = (await board.rankOf(db, userId, period))!;
      const rank = r.rank === null ? null : Number(r.rank);
      const total = Number(r.total_users);
      return {
        rank,
        total_users: total,
        percentile: rank === null || total === 0 ? 0 : Math.round(1000 * (1 - (rank - 1) / total)) / 10,
        period,
        period_xp: Number(r.period_xp),
        total_xp: Number(r.total_xp),
      };
    },

    async stats() {
      const { totals, tracks } = await board.stats(db);
      const counts = new Map(tracks.map((t) => [t.main_track, Number(t.n)]));
      // Ties go to the first track in catalogue order; with no users, backend.
      let top = 'backend';
      for (const t of TRACKS) if ((counts.get(t.id) ?? 0) > (counts.get(top) ?? 0)) top = t.id;
      return {
        total_users: totals.total_users,
        total_conversations: totals.total_conversations,
        total_missions_completed: totals.total_missions_completed,
        total_xp_distributed: Number(totals.total_xp_distributed),
        active_users_today: totals.active_users_today,
        top_track: top,
        avg_daily_xp: Math.round((Number(totals.xp_30d) / 30) * 100) / 100,
      };
    },
  };
}
