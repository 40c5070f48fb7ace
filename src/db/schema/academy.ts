// Academy tables: profiles, lessons (each owning a chat session), the XP ledger, missions and badges.
import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { chatSessions } from './chat.js';
import { tstz } from './columns.js';

export const ACADEMY_TRACKS = ['backend', 'frontend', 'ia', 'devops'] as const;
export const DIFFICULTIES = ['beginner', 'easy', 'medium', 'hard', 'expert'] as const;

export const academyUsers = pgTable(
  'academy_users',
  {
    id: uuid().primaryKey().defaultRandom(),
    // The verified JWT `sub`: one profile per identity.
    userId: text().notNull().unique('academy_users_user_id_key'),
    username: text().notNull(),
    email: text(),
    avatarUrl: text(),
    mainTrack: text({ enum: ACADEMY_TRACKS }).notNull().default('backend'),
    githubUsername: text(),
    // Always Σ amount of the user's ledger rows: only the award transaction changes it.
    totalXp: integer().notNull().default(0),
    enrolledAt: tstz().notNull().defaultNow(),
    updatedAt: tstz().notNull().defaultNow(),
  },
  (t) => [
    check('academy_users_total_xp_nonnegative', sql`${t.totalXp} >= 0`),
    // The all-time leaderboard walks this index in its exact order.
    index('academy_users_leaderboard_idx').on(t.totalXp.desc(), t.enrolledAt, t.userId),
  ],
);

export const academyConversations = pgTable(
  'academy_conversations',
  {
    id: uuid().primaryKey(),
    userId: text()
      .notNull()
      .references(() => academyUsers.userId, { onDelete: 'cascade' }),
    // The lesson's messages are this chat session's messages; removing the session removes the lesson.
    sessionId: text()
      .notNull()
      .references(() => chatSessions.id, { onDelete: 'cascade' }),
    agentName: text().notNull(),
    track: text({ enum: ACADEMY_TRACKS }).notNull(),
    topic: text(),
    difficulty: text({ enum: DIFFICULTIES }).notNull().default('beginner'),
    status: text({ enum: ['active', 'completed'] })
      .notNull()
      .default('active'),
    rating: integer(),
    feedback: text(),
    startedAt: tstz().notNull().defaultNow(),
    completedAt: tstz(),
  },
  (t) => [
    uniqueIndex('academy_conversations_session_idx').on(t.sessionId),
    index('academy_conversations_user_started_idx').on(t.userId, t.startedAt.desc(), t.id.desc()),
    check('academy_conversations_rating_range', sql`${t.rating} between 1 and 5`),
  ],
);

export const academyXpTransactions = pgTable(
  'academy_xp_transactions',
  {
    // Recording order: rows of one transaction share created_at, so the serial id orders history.
    id: bigserial({ mode: 'number' }).primaryKey(),
    userId: text()
      .notNull()
      .references(() => academyUsers.userId, { onDelete: 'cascade' }),
    amount: integer().notNull(),
    balanceAfter: integer().notNull(),
    sourceType: text({
      enum: ['conversation_started', 'conversation_message', 'conversation_completed', 'mission', 'badge'],
    }).notNull(),
    sourceId: text().notNull(),
    // Set on the conversation's own awards, so its xp_earned is one indexed sum.
    conversationId: uuid().references(() => academyConversations.id, { onDelete: 'set null' }),
    description: text().notNull().default(''),
    createdAt: tstz().notNull().defaultNow(),
  },
  (t) => [
    // An event pays at most once, whatever the retries, races, replays or instances.
    uniqueIndex('academy_xp_source_idx').on(t.userId, t.sourceType, t.sourceId),
    check('academy_xp_amount_positive', sql`${t.amount} > 0`),
    index('academy_xp_user_order_idx').on(t.userId, t.id),
    // Period leaderboards and stats windows: an index-only range scan over the window.
    index('academy_xp_window_idx').on(t.createdAt, t.userId, t.amount),
    index('academy_xp_conversation_idx').on(t.conversationId).where(sql`${t.conversationId} is not null`),
  ],
);

export const academyMissions = pgTable(
  'academy_missions',
  {
    id: text().primaryKey(),
    code: text().notNull(),
    title: text().notNull(),
    description: text().notNull().default(''),
    track: text({ enum: ACADEMY_TRACKS }).notNull(),
    difficulty: text({ enum: DIFFICULTIES }).notNull(),
    category: text().notNull(),
    xpReward: integer().notNull(),
    badgeReward: text(),
    requiredLevel: integer().notNull().default(1),
    prerequisites: text().array().notNull().default(sql`'{}'::text[]`),
    githubIssueUrl: text(),
    resources: jsonb().$type<unknown[]>().notNull().default([]),
    videoUrl: text(),
    recommendedAgent: text(),
    isActive: boolean().notNull().default(true),
    isFeatured: boolean().notNull().default(false),
    createdAt: tstz().notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('academy_missions_code_idx').on(t.code),
    check('academy_missions_xp_reward_positive', sql`${t.xpReward} > 0`),
  ],
);

export const academyUserMissions = pgTable(
  'academy_user_missions',
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: text()
      .notNull()
      .references(() => academyUsers.userId, { onDelete: 'cascade' }),
    missionId: text()
      .notNull()
      .references(() => academyMissions.id, { onDelete: 'restrict' }),
    status: text({ enum: ['in_progress', 'completed'] })
      .notNull()
      .default('in_progress'),
    startedAt: tstz().notNull().defaultNow(),
    completedAt: tstz(),
    pullRequestUrl: text(),
    notes: text(),
    xpAwarded: integer().notNull().default(0),
  },
  (t) => [
    // A mission is done once: one row per user and mission.
    uniqueIndex('academy_user_missions_user_mission_idx').on(t.userId, t.missionId),
    index('academy_user_missions_completed_idx').on(t.missionId).where(sql`${t.status} = 'completed'`),
  ],
);

export const academyBadges = pgTable('academy_badges', {
  code: text().primaryKey(),
  name: text().notNull(),
  description: text().notNull().default(''),
  icon: text().notNull(),
  color: text(),
  rarity: text({ enum: ['common', 'uncommon', 'rare', 'epic', 'legendary'] }).notNull(),
  category: text().notNull(),
  xpBonus: integer().notNull().default(0),
  isSecret: boolean().notNull().default(false),
  createdAt: tstz().notNull().defaultNow(),
});

export const academyUserBadges = pgTable(
  'academy_user_badges',
  {
    // Earned order, even for badges earned in one transaction.
    id: bigserial({ mode: 'number' }).primaryKey(),
    userId: text()
      .notNull()
      .references(() => academyUsers.userId, { onDelete: 'cascade' }),
    badgeCode: text()
      .notNull()
      .references(() => academyBadges.code, { onDelete: 'restrict' }),
    earnedAt: tstz().notNull().defaultNow(),
  },
  (t) => [uniqueIndex('academy_user_badges_user_badge_idx').on(t.userId, t.badgeCode)],
);
