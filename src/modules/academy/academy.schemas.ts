// Zod schemas of the academy routes (ACADEMY.md §8) and the response shapes (§3).
import { z } from 'zod';
import { ACADEMY_TRACKS, DIFFICULTIES } from '../../db/schema/academy.js';
import { AppError, type ErrorCode } from '../../errors.js';
import { unstorable } from '../../lib/text.js';
import { progressOf, type Teacher } from './academy.catalog.js';
import type { ConversationRow, UserRow, XpRow } from './academy.repo.js';
import type { BadgeRow } from './ledger.js';
import type { MissionRow, UserMissionRow } from './missions.repo.js';

const MAX_METADATA_BYTES = 16 * 1024;
const track = z.enum(ACADEMY_TRACKS);
const difficulty = z.enum(DIFFICULTIES);
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const intIn = (min: number, max: number, def: number) =>
  z.coerce.number().int().min(min).max(max).default(def);
const optionalText = (max: number) => z.string().max(max).optional();
// A path id that no row can have (too long, NUL, a lone surrogate) names nothing: the same 404 as
// an unknown one, decided here rather than by the database refusing the value.
const pathId = (max: number, notFound: ErrorCode) =>
  z.string().transform((id) => {
    if (!id || id.length > max || unstorable(id)) throw new AppError(notFound);
    return id;
  });

export const enrolBodySchema = z.object({
  username: z
    .string()
    .transform((s) => s.trim())
    .pipe(z.string().min(3, 'username must have at least 3 characters').max(255)),
  email: z
    .string()
    .max(255)
    .refine((e) => e.split('@').length === 2, 'email must contain one @')
    .optional(),
  main_track: track.default('backend'),
  github_username: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/, 'github_username must be a GitHub login')
    .optional(),
});

export const paginationSchema = z.object({ limit: intIn(1, 100, 50), offset: intIn(0, 1_000_000, 0) });

export const agentsQuerySchema = z.object({ track: track.optional() });
export const agentParamsSchema = z.object({ agent_name: pathId(64, 'TEACHER_NOT_FOUND') });
export const userParamsSchema = z.object({ user_id: pathId(255, 'ACADEMY_USER_NOT_FOUND') });

export const startConversationSchema = z.object({
  agent_name: z.string().min(1).max(64),
  track,
  topic: optionalText(255),
  difficulty: difficulty.default('beginner'),
});

export const listConversationsSchema = z.object({
  status: z.enum(['active', 'completed']).optional(),
  agent_name: z.string().min(1).max(64).optional(),
  limit: intIn(1, 100, 20),
  offset: intIn(0, 1_000_000, 0),
});

// Ids are UUIDs; anything else cannot name a conversation, so it is a 404 (never a 5xx from a cast).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Conversation ids are UUIDs: anything else names no conversation (404), never a failed cast.
export const conversationParamsSchema = z.object({
  id: z.string().transform((id) => {
    if (!UUID.test(id)) throw new AppError('CONVERSATION_NOT_FOUND');
    return id;
  }),
});
export const messagesQuerySchema = z.object({ limit: intIn(1, 200, 100) });

export function lessonBodySchema(maxChars: number) {
  const max = Math.min(5000, maxChars);
  return z.object({
    message: z
      .string({ error: 'message is required' })
      .refine((m) => m.trim().length > 0, 'message must not be blank')
      .refine((m) => m.length <= max, `message must be at most ${max} characters`),
    metadata: z
      .record(z.string(), z.unknown())
      .refine(
        (m) => Buffer.byteLength(JSON.stringify(m)) <= MAX_METADATA_BYTES,
        'metadata must be at most 16 KiB',
      )
      .optional(),
  });
}
export type LessonBody = z.infer<ReturnType<typeof lessonBodySchema>>;

export const completeConversationSchema = z.object({
  rating: z.number().int().min(1).max(5).optional(),
  feedback: optionalText(1000),
});

export const listMissionsSchema = z.object({
  track: track.optional(),
  difficulty: difficulty.optional(),
  category: z.string().max(64).optional(),
  featured_only: bool.default(false),
  limit: intIn(1, 100, 20),
  offset: intIn(0, 1_000_000, 0),
});
export const myMissionsSchema = z.object({ status: z.enum(['in_progress', 'completed']).optional() });
export const missionParamsSchema = z.object({ mission_id: pathId(64, 'MISSION_NOT_FOUND') });
export const completeMissionSchema = z.object({
  pull_request_url: z
    .string()
    .max(500)
    .regex(/^https?:\/\/\S+$/i, 'pull_request_url must be an http(s) URL')
    .optional(),
  notes: optionalText(1000),
});

export const badgesQuerySchema = z.object({
  category: z.string().max(64).optional(),
  include_secret: bool.default(false),
});

const period = z.enum(['daily', 'weekly', 'monthly', 'all_time']).default('all_time');
export const leaderboardSchema = z.object({ period, track: track.optional(), limit: intIn(1, 100, 10) });
export const myRankSchema = z.object({ period });

// ---- response shapes ----

const iso = (d: Date | string | null | undefined) => (d == null ? null : new Date(d).toISOString());

export function toBadge(b: BadgeRow) {
  return {
    code: b.code,
    name: b.name,
    description: b.description,
    icon: b.icon,
    color: b.color,
    rarity: b.rarity,
    category: b.category,
    xp_bonus: Number(b.xp_bonus),
    is_secret: b.is_secret,
  };
}

export const toEarnedBadge = (b: BadgeRow) => ({ ...toBadge(b), earned_at: iso(b.earned_at) });

export function toUser(u: UserRow, badges: BadgeRow[], streak: { current: number; longest: number }) {
  return {
    id: u.id,
    user_id: u.user_id,
    username: u.username,
    avatar_url: u.avatar_url,
    progress: progressOf(Number(u.total_xp)),
    main_track: u.main_track,
    badges: badges.map(toEarnedBadge),
    current_streak: streak.current,
    longest_streak: streak.longest,
    total_conversations: Number(u.total_conversations),
    total_missions_completed: Number(u.total_missions_completed),
    github_username: u.github_username,
    enrolled_at: iso(u.enrolled_at),
  };
}

export function toXp(r: XpRow) {
  return {
    id: Number(r.id),
    amount: Number(r.amount),
    balance_after: Number(r.balance_after),
    source_type: r.source_type,
    source_id: r.source_id,
    description: r.description,
    created_at: iso(r.created_at),
  };
}

export function toConversation(c: ConversationRow, teacher: Teacher, messagesCount: number) {
  const completed = c.completed_at ? new Date(c.completed_at).getTime() : null;
  return {
    id: c.id,
    session_id: c.session_id,
    agent_name: c.agent_name,
    agent_display_name: teacher.display_name,
    track: c.track,
    topic: c.topic,
    difficulty: c.difficulty,
    title: `Conversa com ${teacher.display_name}`,
    greeting: teacher.greeting,
    messages_count: messagesCount,
    xp_earned: Number(c.xp_earned),
    status: c.status,
    rating: c.rating,
    feedback: c.feedback,
    started_at: iso(c.started_at),
    completed_at: iso(c.completed_at),
    duration_minutes:
      completed === null ? 0 : Math.floor((completed - new Date(c.started_at).getTime()) / 60_000),
  };
}

export function toMission(m: MissionRow) {
  return {
    id: m.id,
    code: m.code,
    title: m.title,
    description: m.description,
    track: m.track,
    difficulty: m.difficulty,
    category: m.category,
    xp_reward: Number(m.xp_reward),
    badge_reward: m.badge_reward,
    required_level: Number(m.required_level),
    prerequisites: m.prerequisites ?? [],
    github_issue_url: m.github_issue_url,
    resources: m.resources ?? [],
    video_url: m.video_url,
    recommended_agent: m.recommended_agent,
    is_featured: m.is_featured,
    times_completed: Number(m.times_completed),
  };
}

export function toUserMission(um: UserMissionRow, mission: MissionRow) {
  return {
    id: um.id,
    mission: toMission(mission),
    status: um.status,
    started_at: iso(um.started_at),
    completed_at: iso(um.completed_at),
    pull_request_url: um.pull_request_url,
    notes: um.notes,
    xp_awarded: Number(um.xp_awarded),
  };
}
