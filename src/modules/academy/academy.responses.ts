// Response schemas of the academy routes (ACADEMY.md §3, §6, §7): what the serializer checks and the docs show.
import { z } from 'zod';

const timestamp = z.string().nullable();

export const badgeSchema = z.object({
  code: z.string(),
  name: z.string(),
  description: z.string(),
  icon: z.string(),
  color: z.string().nullable(),
  rarity: z.string(),
  category: z.string(),
  xp_bonus: z.number().int(),
  is_secret: z.boolean(),
});
export const earnedBadgeSchema = badgeSchema.extend({ earned_at: timestamp });

const progressSchema = z.object({
  total_xp: z.number().int(),
  current_level: z.number().int(),
  current_rank: z.string(),
  xp_to_next_level: z.number().int(),
  progress_percentage: z.number().int(),
  rank_info: z.object({
    level: z.string(),
    name: z.string(),
    color: z.string(),
    icon: z.string(),
    perks: z.array(z.string()),
    min_xp: z.number().int(),
    max_xp: z.number().int().nullable(),
  }),
});

export const academyUserSchema = z.object({
  id: z.string(),
  user_id: z.string(),
  username: z.string(),
  avatar_url: z.string().nullable(),
  progress: progressSchema,
  main_track: z.string(),
  badges: z.array(earnedBadgeSchema),
  current_streak: z.number().int(),
  longest_streak: z.number().int(),
  total_conversations: z.number().int(),
  total_missions_completed: z.number().int(),
  github_username: z.string().nullable(),
  enrolled_at: timestamp,
});

export const xpHistorySchema = z.array(
  z.object({
    id: z.number().int(),
    amount: z.number().int(),
    balance_after: z.number().int(),
    source_type: z.string(),
    source_id: z.string(),
    description: z.string(),
    created_at: timestamp,
  }),
);

export const teacherSchema = z.object({
  name: z.string(),
  display_name: z.string(),
  avatar: z.string(),
  specialty: z.string(),
  tracks: z.array(z.string()),
  personality: z.string(),
  greeting: z.string(),
  is_available: z.boolean(),
});

export const tracksSchema = z.array(
  z.object({
    id: z.string(),
    name: z.string(),
    description: z.string(),
    icon: z.string(),
    color: z.string(),
    recommended_agents: z.array(z.string()),
  }),
);

export const conversationSchema = z.object({
  id: z.string(),
  session_id: z.string(),
  agent_name: z.string(),
  agent_display_name: z.string(),
  track: z.string(),
  topic: z.string().nullable(),
  difficulty: z.string(),
  title: z.string(),
  greeting: z.string(),
  messages_count: z.number().int(),
  xp_earned: z.number().int(),
  status: z.enum(['active', 'completed']),
  rating: z.number().int().nullable(),
  feedback: z.string().nullable(),
  started_at: timestamp,
  completed_at: timestamp,
  duration_minutes: z.number().int(),
});

const awarded = { xp_awarded: z.number().int(), badges_earned: z.array(badgeSchema) };
export const conversationAwardSchema = conversationSchema.extend(awarded);

export const conversationMessagesSchema = z.array(
  z.object({
    id: z.string(),
    role: z.enum(['user', 'assistant']),
    content: z.string(),
    status: z.string(),
    agent_id: z.string().nullable(),
    xp_awarded: z.number().int(),
    metadata: z.record(z.string(), z.unknown()),
    timestamp: timestamp,
  }),
);

export const lessonAnswerSchema = z.object({
  id: z.string(),
  message_id: z.string(),
  user_message_id: z.string().nullable(),
  session_id: z.string(),
  conversation_id: z.string(),
  role: z.literal('assistant'),
  content: z.string(),
  status: z.string(),
  agent_id: z.string().nullable(),
  ...awarded,
  metadata: z.record(z.string(), z.unknown()),
  timestamp: timestamp,
});

export const missionSchema = z.object({
  id: z.string(),
  code: z.string(),
  title: z.string(),
  description: z.string(),
  track: z.string(),
  difficulty: z.string(),
  category: z.string(),
  xp_reward: z.number().int(),
  badge_reward: z.string().nullable(),
  required_level: z.number().int(),
  prerequisites: z.array(z.string()),
  github_issue_url: z.string().nullable(),
  resources: z.array(z.unknown()),
  video_url: z.string().nullable(),
  recommended_agent: z.string().nullable(),
  is_featured: z.boolean(),
  times_completed: z.number().int(),
});

export const userMissionSchema = z.object({
  id: z.string(),
  mission: missionSchema,
  status: z.enum(['in_progress', 'completed']),
  started_at: timestamp,
  completed_at: timestamp,
  pull_request_url: z.string().nullable(),
  notes: z.string().nullable(),
  xp_awarded: z.number().int(),
});

export const userMissionAwardSchema = userMissionSchema.extend({ badges_earned: z.array(badgeSchema) });

export const leaderboardSchema = z.object({
  entries: z.array(
    z.object({
      rank: z.number().int(),
      user_id: z.string(),
      username: z.string(),
      avatar_url: z.string().nullable(),
      total_xp: z.number().int(),
      period_xp: z.number().int(),
      weekly_xp: z.number().int(),
      current_rank: z.string(),
      main_track: z.string(),
      badges_count: z.number().int(),
      change: z.number().int(),
    }),
  ),
  total_users: z.number().int(),
  period: z.string(),
  track: z.string().nullable(),
  updated_at: z.string(),
});

export const myRankSchema = z.object({
  rank: z.number().int().nullable(),
  total_users: z.number().int(),
  percentile: z.number(),
  period: z.string(),
  period_xp: z.number().int(),
  total_xp: z.number().int(),
});

export const statsSchema = z.object({
  total_users: z.number().int(),
  total_conversations: z.number().int(),
  total_missions_completed: z.number().int(),
  total_xp_distributed: z.number().int(),
  active_users_today: z.number().int(),
  top_track: z.string(),
  avg_daily_xp: z.number(),
});

export const myStatsSchema = z.object({
  total_xp: z.number().int(),
  current_level: z.number().int(),
  current_rank: z.string(),
  total_conversations: z.number().int(),
  completed_conversations: z.number().int(),
  total_missions: z.number().int(),
  completed_missions: z.number().int(),
  badges_count: z.number().int(),
  current_streak: z.number().int(),
  longest_streak: z.number().int(),
  agents_talked_to: z.array(z.string()),
});
