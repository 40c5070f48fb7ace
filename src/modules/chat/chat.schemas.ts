// Zod schemas and response shapes of the chat routes (API.md sections 1–3).
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { storedJson, storedText } from '../../lib/text.js';
import { toMessage } from '../generation/generation.repo.js';
import type { SessionRow } from './chat.repo.js';

export { toMessage };

export const SESSION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_CONTEXT_BYTES = 16 * 1024;

export const sessionIdSchema = z.string().regex(SESSION_ID, 'must be 1–128 characters of [A-Za-z0-9_.:-]');

export function chatBodySchema(maxChars: number) {
  return z.object({
    message: storedText(
      z
        .string({ error: 'message is required' })
        .refine((m) => m.trim().length > 0, 'message must not be blank')
        .refine((m) => m.length <= maxChars, `message must be at most ${maxChars} characters`),
    ),
    session_id: sessionIdSchema.optional(),
    agent_id: z.string().min(1).max(64).optional(),
    context: storedJson(
      z
        .record(z.string(), z.unknown())
        .refine(
          (c) => Buffer.byteLength(JSON.stringify(c)) <= MAX_CONTEXT_BYTES,
          'context must be at most 16 KiB',
        ),
    ).optional(),
  });
}
export type ChatBody = z.infer<ReturnType<typeof chatBodySchema>>;

export const sessionParamsSchema = z.object({ id: sessionIdSchema });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Message ids are UUIDs: any other id names no message, so it is a 404 like an unknown one.
export const messageParamsSchema = z.object({
  message_id: z.string().transform((id) => {
    if (!UUID.test(id)) throw new AppError('MESSAGE_NOT_FOUND');
    return id;
  }),
});

const ISSUED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** True only for a cursor this server could have issued: base64url of [ISO instant, session id]. */
function isIssuedCursor(cursor: string): boolean {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || v.length !== 2) return false;
    const [at, id] = v as unknown[];
    return (
      typeof at === 'string' &&
      ISSUED_AT.test(at) &&
      !Number.isNaN(Date.parse(at)) &&
      new Date(at).toISOString() === at &&
      typeof id === 'string' &&
      SESSION_ID.test(id)
    );
  } catch {
    return false;
  }
}

export const listSessionsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(100_000).default(0),
  cursor: z.string().max(300).refine(isIssuedCursor, 'cursor is not a cursor this server issued').optional(),
});

export const historyQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z
    .string()
    .regex(/^\d{1,15}$/, 'before must be a cursor from next_cursor')
    .optional(),
});

export const renameBodySchema = z.object({
  title: storedText(z.string())
    .transform((t) => t.trim())
    .pipe(z.string().min(1, 'title must not be blank').max(200)),
});

export const resumeQuerySchema = z.object({ after: z.string().max(40).optional() });

// Response shapes: checked when serialized (a handler that drifts from them is a 500 in tests, not a silent change).
const isoOrNull = z.string().nullable();
export const usageSchema = z.object({
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  estimated: z.boolean(),
});

export const sessionSchema = z.object({
  id: z.string(),
  user_id: z.string().nullable(),
  title: z.string().nullable(),
  status: z.string(),
  agent_id: z.string().nullable(),
  message_count: z.number(),
  created_at: isoOrNull,
  updated_at: isoOrNull,
  last_message_at: isoOrNull,
  last_activity: isoOrNull,
  context: z.record(z.string(), z.unknown()),
});

export const messageSchema = z.object({
  id: z.string(),
  session_id: z.string(),
  role: z.enum(['user', 'assistant']),
  content: z.string(),
  status: z.string(),
  agent_id: z.string().nullable(),
  agent_name: z.string().nullable(),
  intent: z.string().nullable(),
  timestamp: isoOrNull,
  usage: usageSchema.nullable(),
  metadata: z.record(z.string(), z.unknown()),
});

export const sessionListSchema = z.object({
  sessions: z.array(sessionSchema),
  count: z.number(),
  limit: z.number(),
  offset: z.number(),
  next_cursor: z.string().nullable(),
});

export const historySchema = z.object({
  session_id: z.string(),
  messages: z.array(messageSchema),
  has_more: z.boolean(),
  next_cursor: z.string().nullable(),
});

/** The answer of `POST /chat/message` (API.md §2). */
export const turnAnswerSchema = z.object({
  session_id: z.string(),
  message_id: z.string(),
  user_message_id: z.string().nullable(),
  message: z.string(),
  agent_id: z.string().nullable(),
  agent_name: z.string().nullable(),
  intent: z.string().nullable(),
  confidence: z.number().nullable(),
  suggested_actions: z.array(z.string()),
  usage: usageSchema.nullable(),
  metadata: z.record(z.string(), z.unknown()),
});

export const agentListSchema = z.array(
  z.object({
    id: z.string(),
    name: z.string(),
    avatar: z.string(),
    role: z.string(),
    description: z.string(),
    status: z.literal('active'),
  }),
);

/** An event stream: the body is not JSON, so there is nothing to serialize (the reply is hijacked). */
export const eventStreamSchema = z.string().describe('text/event-stream');
export const noContentSchema = z.null().describe('no content');

const iso = (d: Date | string | null | undefined) => (d == null ? null : new Date(d).toISOString());

export function toSession(r: SessionRow) {
  return {
    id: r.id,
    user_id: r.user_id,
    title: r.title,
    status: r.status,
    agent_id: r.agent_id,
    message_count: Number(r.message_count),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    last_message_at: iso(r.last_message_at),
    last_activity: iso(r.last_activity_at),
    context: r.context ?? {},
  };
}

/** About 80 characters of the first user message, cut at a word. */
export function deriveTitle(message: string): string {
  const clean = message.replace(/\s+/g, ' ').trim();
  if (clean.length <= 80) return clean;
  const cut = clean.slice(0, 80);
  const space = cut.lastIndexOf(' ');
  return `${(space > 40 ? cut.slice(0, space) : cut).trimEnd()}…`;
}
