// The academy service: profiles, lessons, missions, badges, leaderboard and stats over the ledger.
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import { openOwnedSession, sessionMessageCounts } from '../chat/chat.service.js';
import {
  findTeacher,
  listTeachers,
  progressOf,
  type Teacher,
  TRACKS,
  teacherNames,
  XP,
} from './academy.catalog.js';
import * as repo from './academy.repo.js';
import type * as s from './academy.schemas.js';
import { toBadge, toConversation, toEarnedBadge, toUser, toXp } from './academy.schemas.js';
import { createBoardService } from './board.service.js';
import { award, withUserLock } from './ledger.js';
import { createMissionService } from './missions.service.js';

export interface AcademyServiceDeps {
  db: Db;
}

type In<T extends z.ZodType> = z.output<T>;

const DAY_MS = 86_400_000;

/** Current and longest runs of consecutive UTC days with an award; current ends today or yesterday. */
export function streaks(daysDesc: string[], today: string): { current: number; longest: number } {
  const nums = daysDesc.map((d) => Date.parse(`${d}T00:00:00Z`) / DAY_MS);
  let longest = 0;
  let run = 0;
  let current = 0;
  for (let i = 0; i < nums.length; i++) {
    run = i > 0 && nums[i - 1]! - nums[i]! === 1 ? run + 1 : 1;
    longest = Math.max(longest, run);
    if (current === i && run === i + 1) current = run;
  }
  const todayNum = Date.parse(`${today}T00:00:00Z`) / DAY_MS;
  const recent = nums.length > 0 && todayNum - nums[0]! <= 1;
  return { current: recent ? current : 0, longest };
}

export function teacherOrThrow(name: string): Teacher {
  const teacher = findTeacher(name);
  if (!teacher) {
    throw new AppError('UNKNOWN_AGENT', `Unknown teacher "${name}".`, { valid_agent_names: teacherNames() });
  }
  return teacher;
}

// A conversation's teacher is stored by canonical name; the catalogue always knows it.
const teacherOf = (name: string) => findTeacher(name) ?? teacherOrThrow(name);

export function createAcademyService(deps: AcademyServiceDeps) {
  const { db } = deps;

  async function profile(userId: string) {
    const user = await repo.getUser(db, userId);
    if (!user) throw new AppError('ACADEMY_USER_NOT_FOUND');
    const [badges, days] = await Promise.all([repo.earnedBadges(db, userId), repo.awardDays(db, userId)]);
    return { user, badges, streak: streaks(days.days, days.today) };
  }

  async function requireUser(userId: string) {
    const user = await repo.getUser(db, userId);
    if (!user) throw new AppError('ACADEMY_USER_NOT_FOUND');
    return user;
  }

  async function conversationView(rows: repo.ConversationRow[]) {
    const counts = await sessionMessageCounts(
      db,
      rows.map((r) => r.session_id),
    );
    return rows.map((r) => toConversation(r, teacherOf(r.agent_name), counts.get(r.session_id) ?? 0));
  }

  async function ownConversation(userId: string, id: string) {
    // Only UUIDs name conversations; anything else is unknown, never a cast error.
    const row = await repo.getConversation(db, id, userId);
    if (!row) throw new AppError('CONVERSATION_NOT_FOUND');
    return row;
  }

  return {
    requireUser,

    async enrol(userId: string, body: In<typeof s.enrolBodySchema>) {
      const created = await repo.insertUser(db, {
        userId,
        username: body.username,
        email: body.email ?? null,
        mainTrack: body.main_track,
        githubUsername: body.github_username ?? null,
      });
      const p = await profile(userId);
      const view = toUser(p.user, p.badges, p.streak);
      if (!created) throw new AppError('ALREADY_ENROLLED', undefined, { user: view });
      return view;
    },

    async profile(userId: string) {
      const p = await profile(userId);
      return toUser(p.user, p.badges, p.streak);
    },

    async xpHistory(userId: string, q: In<typeof s.paginationSchema>) {
      await requireUser(userId);
      return (await repo.xpHistory(db, userId, q.limit, q.offset)).map(toXp);
    },

    teachers: (track?: (typeof TRACKS)[number]['id']) => listTeachers(track),

    teacher(name: string) {
      const teacher = findTeacher(name);
      if (!teacher) throw new AppError('TEACHER_NOT_FOUND');
      return teacher;
    },

    tracks: () => TRACKS.map((t) => ({ ...t, recommended_agents: [...t.recommended_agents] })),

    async startConversation(userId: string, body: In<typeof s.startConversationSchema>) {
      const teacher = teacherOrThrow(body.agent_name);
      const id = randomUUID();
      const sessionId = randomUUID();
      const paid = await withUserLock(db, userId, async (locked) => {
        // The lesson's chat session is born with it, in the same transaction.
        await openOwnedSession(locked.tx, {
          id: sessionId,
          userId,
          title: `Conversa com ${teacher.display_name}`,
          agentId: teacher.name,
          context: {},
        });
        await repo.insertConversation(locked.tx, {
          id,
          userId,
          sessionId,
          agentName: teacher.name,
          track: body.track,
          topic: body.topic ?? null,
          difficulty: body.difficulty,
        });
        return award(
          locked,
          [
            {
              amount: XP.conversationStarted,
              sourceType: 'conversation_started',
              sourceId: id,
              conversationId: id,
              description: `Conversa iniciada com ${teacher.display_name}`,
            },
          ],
          ['first_conversation'],
        );
      });
      const [view] = await conversationView([(await repo.getConversation(db, id, userId))!]);
      return { ...view!, xp_awarded: paid.xpAwarded, badges_earned: paid.badges.map(toBadge) };
    },

    async listConversations(userId: string, q: In<typeof s.listConversationsSchema>) {
      await requireUser(userId);
      const agentName = q.agent_name ? (findTeacher(q.agent_name)?.name ?? q.agent_name) : undefined;
      return conversationView(await repo.listConversations(db, userId, { ...q, agentName }));
    },

    async conversation(userId: string, id: string) {
      await requireUser(userId);
      return (await conversationView([await ownConversation(userId, id)]))[0]!;
    },

    /** The caller's conversation, for a lesson turn: 404 if not theirs, 409 once completed. */
    async lessonConversation(userId: string, id: string) {
      await requireUser(userId);
      const row = await ownConversation(userId, id);
      if (row.status === 'completed') {
        throw new AppError('CONVERSATION_COMPLETED', undefined, {
          conversation: (await conversationView([row]))[0],
        });
      }
      return { row, teacher: teacherOf(row.agent_name) };
    },

    async completeConversation(userId: string, id: string, body: In<typeof s.completeConversationSchema>) {
      await requireUser(userId);
      await ownConversation(userId, id);
      const rating = body.rating ?? null;
      const paid = await withUserLock(db, userId, async (locked) => {
        const done = await repo.completeConversation(locked.tx, id, userId, {
          rating,
          feedback: body.feedback ?? null,
        });
        if (!done) return null;
        return award(locked, [
          {
            amount: rating === 5 ? XP.conversationExcellent : XP.conversationCompleted,
            sourceType: 'conversation_completed',
            sourceId: id,
            conversationId: id,
            description: rating === 5 ? 'Conversa concluida com avaliacao 5' : 'Conversa concluida',
          },
        ]);
      });
      const [view] = await conversationView([(await repo.getConversation(db, id, userId))!]);
      if (!paid) throw new AppError('CONVERSATION_COMPLETED', undefined, { conversation: view });
      return { ...view!, xp_awarded: paid.xpAwarded, badges_earned: paid.badges.map(toBadge) };
    },

    ...createMissionService({ db, requireUser }),

    async myBadges(userId: string) {
      await requireUser(userId);
      return (await repo.earnedBadges(db, userId)).map(toEarnedBadge);
    },

    async badges(q: In<typeof s.badgesQuerySchema>) {
      return (await repo.listBadges(db, { category: q.category, includeSecret: q.include_secret })).map(
        toBadge,
      );
    },

    ...createBoardService({ db, requireUser }),

    async myStats(userId: string) {
      const p = await profile(userId);
      const progress = progressOf(Number(p.user.total_xp));
      return {
        total_xp: progress.total_xp,
        current_level: progress.current_level,
        current_rank: progress.current_rank,
        total_conversations: Number(p.user.total_conversations),
        completed_conversations: Number(p.user.completed_conversations),
        total_missions: Number(p.user.total_missions),
        completed_missions: Number(p.user.total_missions_completed),
        badges_count: p.badges.length,
        current_streak: p.streak.current,
        longest_streak: p.streak.longest,
        agents_talked_to: await repo.agentsTalkedTo(db, userId),
      };
    },
  };
}

export type AcademyService = ReturnType<typeof createAcademyService>;
