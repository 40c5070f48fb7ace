// Chat tables: sessions, their messages (user turns and assistant replies), and the usage ledger.
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  real,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { tstz } from './columns.js';

export const chatSessions = pgTable(
  'chat_sessions',
  {
    // Client-chosen ids ("session_1732000000000_ab12cd3") are kept verbatim.
    id: text().primaryKey(),
    userId: text(),
    title: text(),
    titleIsCustom: boolean().notNull().default(false),
    status: text().notNull().default('active'),
    agentId: text(),
    messageCount: integer().notNull().default(0),
    // Monotonic per-session counter; message order comes from it, never from clocks.
    lastSeq: bigint({ mode: 'number' }).notNull().default(0),
    context: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    createdAt: tstz().notNull().defaultNow(),
    updatedAt: tstz().notNull().defaultNow(),
    lastMessageAt: tstz(),
    lastActivityAt: tstz().notNull().defaultNow(),
    deletedAt: tstz(),
  },
  (t) => [
    check('chat_sessions_id_shape', sql`${t.id} ~ '^[A-Za-z0-9_.:-]{1,128}$'`),
    index('chat_sessions_user_activity_idx')
      .on(t.userId, t.lastActivityAt.desc(), t.id.desc())
      .where(sql`${t.deletedAt} is null`),
  ],
);

export const chatMessages = pgTable(
  'chat_messages',
  {
    id: uuid().primaryKey(),
    sessionId: text()
      .notNull()
      .references(() => chatSessions.id, { onDelete: 'cascade' }),
    seq: bigint({ mode: 'number' }).notNull(),
    role: text({ enum: ['user', 'assistant'] }).notNull(),
    content: text().notNull().default(''),
    status: text({ enum: ['streaming', 'completed', 'stopped', 'interrupted', 'failed'] })
      .notNull()
      .default('completed'),
    userId: text(),
    agentId: text(),
    agentName: text(),
    intent: text(),
    confidence: real(),
    finishReason: text(),
    usage: jsonb().$type<{ prompt_tokens: number; completion_tokens: number; estimated: boolean }>(),
    metadata: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    // On the user message: the retry key and the hash of the request it was first used with.
    idempotencyScope: text(),
    idempotencyKey: text(),
    requestHash: text(),
    // On the assistant message: the user message it answers and the producer's liveness.
    replyTo: uuid(),
    instanceId: text(),
    heartbeatAt: tstz(),
    createdAt: tstz().notNull().defaultNow(),
    updatedAt: tstz().notNull().defaultNow(),
    deletedAt: tstz(),
  },
  (t) => [
    uniqueIndex('chat_messages_session_seq_idx').on(t.sessionId, t.seq),
    uniqueIndex('chat_messages_idempotency_idx')
      .on(t.idempotencyScope, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} is not null`),
    index('chat_messages_streaming_idx').on(t.heartbeatAt).where(sql`${t.status} = 'streaming'`),
    index('chat_messages_request_hash_idx')
      .on(t.sessionId, t.requestHash, t.createdAt)
      .where(sql`${t.role} = 'user'`),
  ],
);

export const generationUsage = pgTable(
  'generation_usage',
  {
    id: uuid().primaryKey().defaultRandom(),
    messageId: uuid()
      .notNull()
      .references(() => chatMessages.id, { onDelete: 'cascade' }),
    sessionId: text().notNull(),
    userId: text(),
    agentId: text(),
    model: text().notNull(),
    promptTokens: integer().notNull().default(0),
    completionTokens: integer().notNull().default(0),
    estimated: boolean().notNull().default(false),
    status: text().notNull(),
    createdAt: tstz().notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('generation_usage_message_idx').on(t.messageId),
    index('generation_usage_user_day_idx').on(t.userId, t.createdAt),
  ],
);
