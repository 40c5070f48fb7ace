// Every query on the assistant row: read, the final write (with its hook), stop, sweep, liveness (batched writes: writer.repo.ts).
import { sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../../db/client.js';
import type { CompleteExtra, PreludeEvent, Usage } from './events.js';

export type FinalStatus = 'completed' | 'stopped' | 'interrupted' | 'failed';

export interface MessageRow {
  id: string;
  session_id: string;
  seq: number | string;
  role: 'user' | 'assistant';
  content: string;
  status: string;
  user_id: string | null;
  agent_id: string | null;
  agent_name: string | null;
  intent: string | null;
  confidence: number | null;
  finish_reason: string | null;
  usage: Usage | null;
  metadata: Record<string, unknown>;
  reply_to: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  heartbeat_at?: Date | string | null;
}

export type ReplyRow = MessageRow & { session_user_id: string | null; session_deleted: boolean };

/**
 * What a rebuilt stream needs beyond the row's columns to repeat the live one exactly; kept in
 * `metadata.stream` (hidden from the public message shape) and written with the checkpoints and
 * the final UPDATE.
 */
export interface StreamMeta {
  /** The agent id the client asked for (an alias is echoed back), as chunks and `complete` say it. */
  agent_echo_id: string;
  prelude: PreludeEvent[];
  suggested_actions?: string[];
  complete_extra?: CompleteExtra;
}

const iso = (d: Date | string | null | undefined) => (d == null ? null : new Date(d).toISOString());

export function streamMetaOf(row: Pick<MessageRow, 'metadata'>): StreamMeta | null {
  const meta = row.metadata?.stream;
  return meta && typeof meta === 'object' ? (meta as StreamMeta) : null;
}

/** The public shape of a stored message (history, stop answers). */
export function toMessage(r: MessageRow) {
  const { stream: _hidden, ...metadata } = r.metadata ?? {};
  return {
    id: r.id,
    session_id: r.session_id,
    role: r.role,
    content: r.content,
    status: r.status,
    agent_id: r.agent_id,
    agent_name: r.agent_name,
    intent: r.intent,
    timestamp: iso(r.created_at),
    usage: r.usage,
    metadata: { ...metadata, ...(r.finish_reason ? { finish_reason: r.finish_reason } : {}) },
  };
}

/** A message with its session's owner, for ownership checks. */
export async function getReply(db: Db, messageId: string): Promise<ReplyRow | undefined> {
  return rowsOf<ReplyRow>(
    await db.execute(sql`
      select m.id, m.session_id, m.seq, m.role, m.content, m.status, m.user_id, m.agent_id, m.agent_name, m.intent,
             m.confidence, m.finish_reason, m.usage, m.metadata, m.reply_to, m.created_at, m.updated_at, m.heartbeat_at,
             s.user_id as session_user_id, (s.deleted_at is not null) as session_deleted
      from chat_messages m join chat_sessions s on s.id = m.session_id
      where m.id = ${messageId} and m.deleted_at is null`),
  )[0];
}

/** What a checkpoint learned about the row: whether a stop was asked for, and whether it is still ours. */
export interface CheckpointAnswer {
  /** A stop was recorded in the row (`metadata.stop_requested_at`): the producer must stop. */
  stopRequested: boolean;
  /** The row's status now (`stopped` by a stop whose producer looked dead, `interrupted` by the sweeper). */
  status: string | null;
}

/**
 * Records a stop in the row, so it outlives a lost pub/sub message: the producer reads it back
 * at its next checkpoint. False when the row is no longer streaming (nothing to stop).
 */
export async function recordStop(db: Db, messageId: string): Promise<boolean> {
  const rows = rowsOf<{ id: string }>(
    await db.execute(sql`
      update chat_messages set metadata = metadata || jsonb_build_object('stop_requested_at', now())
      where id = ${messageId} and status = 'streaming' returning id`),
  );
  return rows.length > 0;
}

/*
 * Keyless dedupe: while a reply streams, its user message holds the key `dedupe <request hash>` in
 * its idempotency scope, under the same unique index as client keys (a client key has no space, so
 * the two never meet). A concurrent identical request then fails its insert on that index and
 * attaches to the winner; every way a reply ends releases the key, so the next identical message
 * is a new turn.
 */
export const DEDUPE_KEY_PREFIX = 'dedupe ';
const releaseDedupe = (ended: ReturnType<typeof sql.raw>) => sql`
  update chat_messages um set idempotency_key = null from ${ended} e
  where um.id = e.reply_to and um.idempotency_key like ${`${DEDUPE_KEY_PREFIX}%`}
  returning 1`;

export interface FinalWrite {
  messageId: string;
  content: string;
  status: FinalStatus;
  finishReason: string;
  agentId: string;
  agentName: string;
  intent: string | null;
  confidence: number | null;
  usage: Usage;
  model: string;
  /** Merged into the row's metadata (error codes, `stream`). */
  metadata: Record<string, unknown>;
}

/**
 * A streaming row whose producer has not beaten for `staleAfterMs` of the database's uptime. A
 * database that restarted (or failed over to a restarted server) less than `staleAfterMs` ago
 * gives every producer that long to beat again: their checkpoints failed while it was down, and
 * calling them dead then would close rows whose replies are still being written.
 */
const staleSql = (staleAfterMs: number) => {
  const cutoff = sql`now() - make_interval(secs => ${staleAfterMs / 1000})`;
  return sql`(heartbeat_at < ${cutoff} and pg_postmaster_start_time() < ${cutoff})`;
};

/**
 * Reads back the text a dead producer emitted after its last checkpoint (its mirrored log), or
 * null when there is none to trust. See `closeOrphan`.
 */
export type RecoverText = (messageId: string, stored: string) => Promise<string | null>;

/**
 * Closes a reply whose producer is gone (`stopped` by a stop, `interrupted` by the sweeper). When
 * the producer's whole log survives in Redis and extends the stored text, the row takes the log's
 * text: followers of that log already showed it, and a later replay must equal what they showed.
 * Otherwise the last checkpoint stays. False when the row is no longer streaming (or, with
 * `staleAfterMs`, when its producer beat again meanwhile).
 */
export async function closeOrphan(
  db: Db,
  messageId: string,
  status: 'stopped' | 'interrupted',
  recover: RecoverText | null,
  staleAfterMs?: number,
): Promise<boolean> {
  const [row] = rowsOf<{ content: string }>(
    await db.execute(sql`select content from chat_messages where id = ${messageId} and status = 'streaming'`),
  );
  if (!row) return false;
  const text = (recover && (await recover(messageId, row.content).catch(() => null))) ?? null;
  const stale = staleAfterMs === undefined ? sql`` : sql`and ${staleSql(staleAfterMs)}`;
  const by = status === 'interrupted' ? '{"interrupted_by":"sweeper"}' : '{}';
  const rows = rowsOf<{ id: string }>(
    await db.execute(sql`
      with m as (
        update chat_messages set status = ${status}, finish_reason = ${status}, heartbeat_at = null,
          updated_at = now(), content = coalesce(${text}, content), metadata = metadata || ${by}::jsonb
        where id = ${messageId} and status = 'streaming' ${stale}
        returning id, reply_to
      ), k as (${releaseDedupe(sql.raw('m'))})
      select id from m`),
  );
  return rows.length > 0;
}

/** Marks replies whose producer stopped heart-beating (a crashed instance) as interrupted. */
export async function sweepOrphans(
  db: Db,
  staleAfterMs: number,
  recover: RecoverText | null = null,
): Promise<string[]> {
  const stale = rowsOf<{ id: string }>(
    await db.execute(sql`
      select id from chat_messages
      where status = 'streaming' and ${staleSql(staleAfterMs)}
      limit 200`),
  );
  const closed: string[] = [];
  for (const { id } of stale) {
    if (await closeOrphan(db, id, 'interrupted', recover, staleAfterMs)) closed.push(id);
  }
  return closed;
}

/** Daily token use of a user, from the ledger. */
export async function tokensUsedToday(db: Db, userId: string): Promise<number> {
  const rows = rowsOf<{ n: string | number | null }>(
    await db.execute(sql`
      select coalesce(sum(prompt_tokens + completion_tokens), 0) as n from generation_usage
      where user_id = ${userId} and created_at >= date_trunc('day', now())`),
  );
  return Number(rows[0]?.n ?? 0);
}

/** Whether a streaming row's producer is still heart-beating. */
export async function producerAlive(db: Db, messageId: string, staleAfterMs: number): Promise<boolean> {
  const rows = rowsOf<{ alive: boolean }>(
    await db.execute(sql`
      select (status = 'streaming' and not coalesce(${staleSql(staleAfterMs)}, false)) as alive
      from chat_messages where id = ${messageId}`),
  );
  return rows[0]?.alive === true;
}

/**
 * The id of a session's running reply (its latest assistant message, if still streaming), when
 * the session is visible to the caller; else undefined, whether the session is finished, new or foreign.
 */
export async function activeReplyOf(db: Db, sessionId: string, userId: string | null) {
  const rows = rowsOf<{ id: string; status: string }>(
    await db.execute(sql`
      select m.id, m.status from chat_messages m
      where m.session_id = (
          select id from chat_sessions
          where id = ${sessionId} and deleted_at is null and (user_id is null or user_id = ${userId}))
        and m.role = 'assistant' and m.deleted_at is null
      order by m.seq desc limit 1`),
  );
  return rows[0]?.status === 'streaming' ? rows[0].id : undefined;
}
