// Chat queries: the one-statement turn write, sessions, history (the assistant row's own queries live in generation/).
import { sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../../db/client.js';
import { namedStatement } from '../../db/prepared.js';
import { DEDUPE_KEY_PREFIX, type MessageRow } from '../generation/generation.repo.js';

export type { MessageRow };

export interface SessionRow {
  id: string;
  user_id: string | null;
  title: string | null;
  status: string;
  agent_id: string | null;
  message_count: number;
  context: Record<string, unknown>;
  created_at: Date | string;
  updated_at: Date | string;
  last_message_at: Date | string | null;
  last_activity_at: Date | string;
  deleted_at?: Date | string | null;
}

const SESSION_COLS = sql.raw(
  'id, user_id, title, status, agent_id, message_count, context, created_at, updated_at, last_message_at, last_activity_at',
);
const MESSAGE_COLS = sql.raw(
  'id, session_id, seq, role, content, status, user_id, agent_id, agent_name, intent, confidence, finish_reason, usage, metadata, reply_to, created_at, updated_at',
);

// A session is visible to its owner; an anonymous session to whoever holds its id.
const visibleTo = (userId: string | null) =>
  userId === null ? sql`user_id is null` : sql`(user_id is null or user_id = ${userId})`;

export interface TurnInsert {
  sessionId: string;
  userId: string | null;
  title: string;
  agentId: string | null;
  context: Record<string, unknown> | null;
  userMessageId: string;
  assistantMessageId: string;
  content: string;
  /** The user message's metadata; null: `{}`. */
  userMetadata: Record<string, unknown> | null;
  idempotencyScope: string;
  idempotencyKey: string | null;
  requestHash: string;
  instanceId: string;
}

export type TurnInsertResult =
  | { kind: 'created'; userSeq: number; sessionCreated: boolean; startedAt: Date | string }
  | { kind: 'duplicate'; userMessageId: string; assistantMessageId: string }
  | { kind: 'forbidden' };

/**
 * How long an identical keyless POST attaches to a turn that has not completed (API.md §1).
 * The window slides from the first request's `created_at` (no buckets, so no boundary where two
 * requests a millisecond apart split): inside it the key's unique index makes twins attach; past
 * it the same statement releases the old holder's key and the new request is a turn of its own.
 */
export const DEDUPE_WINDOW_S = 30;

const insertTurnStatement = namedStatement(
  'chat_insert_turn_v5',
  [
    'userId',
    'keyless',
    'scope',
    'dedupeKey',
    'sessionId',
    'title',
    'agentId',
    'context',
    'userMessageId',
    'content',
    'metadata',
    'messageKey',
    'requestHash',
    'assistantMessageId',
    'instanceId',
  ],
  (v) => sql`
  with dup as (
    select um.id as user_message_id, am.id as assistant_message_id
    from chat_messages um
    join chat_messages am on am.reply_to = um.id and am.session_id = um.session_id
    join chat_sessions ds on ds.id = um.session_id and ds.deleted_at is null
      and (ds.user_id is null or ds.user_id = ${v.userId})
    where ${v.keyless}
      and um.idempotency_scope = ${v.scope} and um.idempotency_key = ${v.dedupeKey}
      and um.session_id = ${v.sessionId} and am.status = 'streaming' and um.deleted_at is null
      and um.created_at > now() - make_interval(secs => ${DEDUPE_WINDOW_S})
    limit 1
  ),
  stale as (
    update chat_messages set idempotency_key = null
    where ${v.keyless} and not exists (select 1 from dup)
      and idempotency_scope = ${v.scope} and idempotency_key = ${v.dedupeKey}
      and created_at <= now() - make_interval(secs => ${DEDUPE_WINDOW_S})
    returning 1
  ),
  s as (
    insert into chat_sessions as cs (id, user_id, title, agent_id, context, message_count, last_seq, last_message_at, last_activity_at)
    select ${v.sessionId}, ${v.userId}, ${v.title}, ${v.agentId}, coalesce(${v.context}::jsonb, '{}'::jsonb), 2, 2, now(), now()
    where not exists (select 1 from dup)
    on conflict (id) do update set
      user_id = coalesce(cs.user_id, excluded.user_id),
      title = coalesce(cs.title, excluded.title),
      agent_id = coalesce(${v.agentId}, cs.agent_id),
      context = case when ${v.context}::jsonb is null then cs.context else excluded.context end,
      message_count = cs.message_count + 2,
      last_seq = cs.last_seq + 2,
      last_message_at = now(), last_activity_at = now(), updated_at = now()
    where cs.deleted_at is null and (cs.user_id is null or cs.user_id = excluded.user_id)
    returning cs.last_seq, (xmax = 0) as created
  ),
  u as (
    insert into chat_messages (id, session_id, seq, role, content, status, user_id, metadata, idempotency_scope, idempotency_key, request_hash)
    select ${v.userMessageId}::uuid, ${v.sessionId}, s.last_seq - 1, 'user', ${v.content}, 'completed', ${v.userId},
           coalesce(${v.metadata}::jsonb, '{}'::jsonb), ${v.scope}, ${v.messageKey}, ${v.requestHash}
    from s
    where (select count(*) from stale) >= 0
    returning seq
  ),
  a as (
    insert into chat_messages (id, session_id, seq, role, content, status, user_id, reply_to, instance_id, heartbeat_at)
    select ${v.assistantMessageId}::uuid, ${v.sessionId}, s.last_seq, 'assistant', '', 'streaming', ${v.userId},
           ${v.userMessageId}::uuid, ${v.instanceId}, now()
    from s
    returning id, created_at
  )
  select (select seq from u) as user_seq, (select created from s) as created,
         (select user_message_id from dup) as dup_user, (select assistant_message_id from dup) as dup_assistant,
         (select count(*) from a)::int as inserted, (select created_at from a) as started_at
  `,
);

/**
 * The whole turn in ONE statement (one round trip, one implicit transaction): upsert the session
 * with ownership enforced in its WHERE, then insert the user message and the streaming assistant
 * message. A foreign or deleted session makes the upsert return nothing, so nothing is written.
 * An identical keyless request within 30 s of a turn whose reply still streams returns that turn
 * instead of a new one; two that race both try the insert, and the unique index lets one win.
 */
export async function insertTurn(db: Db, t: TurnInsert): Promise<TurnInsertResult> {
  // A keyless request holds `dedupe <hash>` while its reply streams (see generation.repo.ts): the
  // unique index makes a concurrent twin fail its insert instead of writing a second turn. The
  // user message's insert reads `stale` (a scalar subquery), so an expired holder's key is
  // released before the new one is written.
  const dedupeKey = `${DEDUPE_KEY_PREFIX}${t.requestHash}`;
  const result = await insertTurnStatement(db, {
    userId: t.userId,
    keyless: t.idempotencyKey === null,
    scope: t.idempotencyScope,
    dedupeKey,
    sessionId: t.sessionId,
    title: t.title,
    agentId: t.agentId,
    context: t.context === null ? null : JSON.stringify(t.context),
    userMessageId: t.userMessageId,
    content: t.content,
    metadata: t.userMetadata === null ? null : JSON.stringify(t.userMetadata),
    messageKey: t.idempotencyKey ?? dedupeKey,
    requestHash: t.requestHash,
    assistantMessageId: t.assistantMessageId,
    instanceId: t.instanceId,
  });
  const row = rowsOf<{
    user_seq: string | number | null;
    created: boolean | null;
    dup_user: string | null;
    dup_assistant: string | null;
    inserted: number;
    started_at: Date | string | null;
  }>(result)[0]!;
  if (row.dup_user && row.dup_assistant) {
    return { kind: 'duplicate', userMessageId: row.dup_user, assistantMessageId: row.dup_assistant };
  }
  if (row.user_seq === null || row.inserted === 0) return { kind: 'forbidden' };
  return {
    kind: 'created',
    userSeq: Number(row.user_seq),
    sessionCreated: row.created === true,
    startedAt: row.started_at ?? new Date(),
  };
}

/** The turn a previous request with this Idempotency-Key started, if any. */
export async function findByIdempotencyKey(db: Db, scope: string, key: string) {
  return rowsOf<{
    user_message_id: string;
    assistant_message_id: string | null;
    request_hash: string;
    session_id: string;
  }>(
    await db.execute(sql`
      select um.id as user_message_id, am.id as assistant_message_id, um.request_hash, um.session_id
      from chat_messages um left join chat_messages am on am.reply_to = um.id and am.session_id = um.session_id
      where um.idempotency_scope = ${scope} and um.idempotency_key = ${key}
      limit 1`),
  )[0];
}

export async function getSession(db: Db, id: string, userId: string | null): Promise<SessionRow | undefined> {
  return rowsOf<SessionRow>(
    await db.execute(
      sql`select ${SESSION_COLS} from chat_sessions where id = ${id} and deleted_at is null and ${visibleTo(userId)}`,
    ),
  )[0];
}

export interface SessionPage {
  rows: SessionRow[];
  count: number;
}

export async function listSessions(
  db: Db,
  userId: string,
  opts: { limit: number; offset: number; after?: { at: string; id: string } },
): Promise<SessionPage> {
  // The sort matches the index (DESC NULLS LAST) exactly, so Postgres walks it instead of sorting.
  const keyset = opts.after
    ? sql`and (last_activity_at, id) < (${opts.after.at}::timestamptz, ${opts.after.id})`
    : sql``;
  const [rows, count] = await Promise.all([
    db.execute(sql`
      select ${SESSION_COLS} from chat_sessions
      where user_id = ${userId} and deleted_at is null ${keyset}
      order by last_activity_at desc nulls last, id desc nulls last
      limit ${opts.limit} offset ${opts.after ? 0 : opts.offset}`),
    db.execute(
      sql`select count(*)::int as n from chat_sessions where user_id = ${userId} and deleted_at is null`,
    ),
  ]);
  return { rows: rowsOf<SessionRow>(rows), count: rowsOf<{ n: number }>(count)[0]!.n };
}

export async function renameSession(db: Db, id: string, userId: string | null, title: string) {
  return rowsOf<SessionRow>(
    await db.execute(sql`
      update chat_sessions set title = ${title}, title_is_custom = true, updated_at = now(), last_activity_at = now()
      where id = ${id} and deleted_at is null and ${visibleTo(userId)}
      returning ${SESSION_COLS}`),
  )[0];
}

export async function softDeleteSession(db: Db, id: string, userId: string | null): Promise<boolean> {
  const rows = rowsOf<{ id: string }>(
    await db.execute(sql`
      update chat_sessions set deleted_at = now(), updated_at = now()
      where id = ${id} and deleted_at is null and ${visibleTo(userId)} returning id`),
  );
  return rows.length > 0;
}

export async function restoreSession(db: Db, id: string, userId: string | null, windowDays: number) {
  return rowsOf<SessionRow>(
    await db.execute(sql`
      update chat_sessions set deleted_at = null, updated_at = now()
      where id = ${id} and deleted_at is not null and deleted_at > now() - make_interval(days => ${windowDays})
        and ${visibleTo(userId)}
      returning ${SESSION_COLS}`),
  )[0];
}

/** Soft-clears a session's messages; false when the session is not visible to the caller. */
export async function clearHistory(db: Db, id: string, userId: string | null): Promise<boolean> {
  const rows = rowsOf<{ id: string }>(
    await db.execute(sql`
      with s as (
        update chat_sessions set message_count = 0, updated_at = now()
        where id = ${id} and deleted_at is null and ${visibleTo(userId)} returning id
      ), m as (
        update chat_messages set deleted_at = now()
        where session_id in (select id from s) and deleted_at is null returning 1
      )
      select id from s`),
  );
  return rows.length > 0;
}

/** The latest `limit` messages before `beforeSeq`, newest first (the caller reverses). */
export async function historyPage(db: Db, sessionId: string, limit: number, beforeSeq?: number) {
  const before = beforeSeq === undefined ? sql`` : sql`and seq < ${beforeSeq}`;
  return rowsOf<MessageRow>(
    await db.execute(sql`
      select ${MESSAGE_COLS} from chat_messages
      where session_id = ${sessionId} and deleted_at is null ${before}
      order by seq desc limit ${limit}`),
  );
}

/** Recent completed turns for the model prompt, newest first. */
export async function recentForPrompt(db: Db, sessionId: string, beforeSeq: number, limit: number) {
  return rowsOf<{ role: 'user' | 'assistant'; content: string }>(
    await db.execute(sql`
      select role, content from chat_messages
      where session_id = ${sessionId} and seq < ${beforeSeq} and deleted_at is null
        and status in ('completed', 'stopped') and content <> ''
      order by seq desc limit ${limit}`),
  );
}

/** Creates a session owned by `userId` (another module's record, e.g. an academy lesson, owns it). */
export async function insertOwnedSession(
  db: Pick<Db, 'execute'>,
  s: { id: string; userId: string; title: string; agentId: string; context: Record<string, unknown> },
): Promise<void> {
  await db.execute(sql`
    insert into chat_sessions (id, user_id, title, agent_id, context)
    values (${s.id}, ${s.userId}, ${s.title}, ${s.agentId}, ${JSON.stringify(s.context)}::jsonb)`);
}

/** Stored message counts of the given sessions (user and assistant messages). */
export async function messageCounts(db: Db, ids: string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows = rowsOf<{ id: string; message_count: number }>(
    await db.execute(sql`
      select id, message_count from chat_sessions
      where id in (${sql.join(
        ids.map((id) => sql`${id}`),
        sql`, `,
      )})`),
  );
  return new Map(rows.map((r) => [r.id, Number(r.message_count)]));
}
