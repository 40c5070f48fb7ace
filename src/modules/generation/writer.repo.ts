// The reply writer's statements: many replies' checkpoints, or many final writes, in one statement each.
import { sql, TransactionRollbackError } from 'drizzle-orm';
import { type Db, rowsOf, type Tx } from '../../db/client.js';
import { namedStatement } from '../../db/prepared.js';
import type { CompleteExtra } from './events.js';
import {
  type CheckpointAnswer,
  DEDUPE_KEY_PREFIX,
  type FinalWrite,
  type StreamMeta,
} from './generation.repo.js';

export interface CheckpointRow {
  messageId: string;
  /** The text so far, or null for a heartbeat only. */
  content: string | null;
  /** Written once, with the first checkpoint after the agent is known. */
  meta?: { agentId: string; agentName: string; stream: StreamMeta };
}

/*
 * The rows travel as one JSON parameter (`json_to_recordset`): the same text on node-postgres
 * and PGlite, one bind value whatever the batch size, and the statement text never changes, so it
 * stays a named prepared statement. A lone UTF-16 surrogate would make the JSON unreadable to
 * Postgres; node-postgres sends it as U+FFFD in a text parameter, and so do we.
 */
const wellFormed = (s: string) => (s as unknown as { toWellFormed(): string }).toWellFormed();
// JSON.stringify writes a lone surrogate as a `\udXXX` escape (a pair stays raw), so the replacer,
// which costs a call per value, only runs when the plain text has such an escape (or a literal
// backslash before one, which is rare and only costs the second pass).
const LONE_SURROGATE_ESCAPE = /\\ud[89a-f][0-9a-f]{2}/;
const toJson = (rows: unknown[]) => {
  const plain = JSON.stringify(rows);
  if (!LONE_SURROGATE_ESCAPE.test(plain)) return plain;
  return JSON.stringify(rows, (_key, v) => (typeof v === 'string' ? wellFormed(v) : v));
};

const checkpointStatement = namedStatement(
  'chat_checkpoint_many_v2',
  ['payload'],
  (v) => sql`
      with v as (
        select * from json_to_recordset(${v.payload}::json)
          as v(id uuid, content text, agent_id text, agent_name text, stream jsonb)
      ), u as (
        update chat_messages m set
          content = coalesce(v.content, m.content),
          heartbeat_at = now(),
          updated_at = case when v.content is null then m.updated_at else now() end,
          agent_id = coalesce(v.agent_id, m.agent_id),
          agent_name = coalesce(v.agent_name, m.agent_name),
          metadata = case when v.stream is null then m.metadata
                          else m.metadata || jsonb_build_object('stream', v.stream) end
        from v where m.id = v.id and m.status = 'streaming'
        returning 1
      )
      select m.id, m.status, (m.metadata ? 'stop_requested_at') as stop
      from chat_messages m join v on m.id = v.id
      where m.status <> 'streaming' or m.metadata ? 'stop_requested_at'`,
);

const finalizeStatement = namedStatement(
  'chat_finalize_many_v1',
  ['payload'],
  (v) => sql`
      with v as (
        select * from json_to_recordset(${v.payload}::json) as v(
          id uuid, content text, status text, finish_reason text, agent_id text, agent_name text,
          intent text, confidence real, usage jsonb, metadata jsonb, model text,
          prompt_tokens integer, completion_tokens integer, estimated boolean)
      ), m as (
        update chat_messages c set content = v.content, status = v.status, finish_reason = v.finish_reason,
          agent_id = v.agent_id, agent_name = v.agent_name, intent = v.intent, confidence = v.confidence,
          usage = v.usage, metadata = c.metadata || v.metadata, heartbeat_at = null, updated_at = now()
        from v where c.id = v.id and c.status in ('streaming', 'interrupted')
        returning c.id, c.session_id, c.user_id, c.reply_to
      ), k as (
        update chat_messages um set idempotency_key = null from m
        where um.id = m.reply_to and um.idempotency_key like ${`${DEDUPE_KEY_PREFIX}%`}
        returning 1
      ), l as (
        insert into generation_usage (message_id, session_id, user_id, agent_id, model, prompt_tokens, completion_tokens, estimated, status)
        select m.id, m.session_id, m.user_id, v.agent_id, v.model, v.prompt_tokens, v.completion_tokens, v.estimated, v.status
        from m join v on v.id = m.id
        on conflict (message_id) do update set prompt_tokens = excluded.prompt_tokens,
          completion_tokens = excluded.completion_tokens, estimated = excluded.estimated, status = excluded.status
        returning 1
      )
      select id from m`,
);

/**
 * Heartbeats and checkpoints of many streaming replies in one statement. A row answers only when
 * its producer must act: a stop was recorded, or the row is no longer `streaming` (it was not
 * written; its producer learns why). The rest, nearly all of them, answer nothing: at 10k live
 * replies the answers were 2,000 parsed rows a second for no news.
 */
export async function checkpointMany(db: Db, rows: CheckpointRow[]): Promise<Map<string, CheckpointAnswer>> {
  // A heartbeat's row is its id alone: json_to_recordset reads a missing key as null.
  const payload = toJson(
    rows.map((r) =>
      r.content === null && !r.meta
        ? { id: r.messageId }
        : {
            id: r.messageId,
            content: r.content,
            agent_id: r.meta?.agentId ?? null,
            agent_name: r.meta?.agentName ?? null,
            stream: r.meta?.stream ?? null,
          },
    ),
  );
  // The final select reads the rows as they were before the UPDATE (a CTE's changes are not
  // visible to it): status and stop intent are not columns the UPDATE touches.
  const result = rowsOf<{ id: string; status: string; stop: boolean }>(
    await checkpointStatement(db, { payload }),
  );
  return new Map(result.map((r) => [r.id, { stopRequested: r.stop === true, status: r.status }]));
}

/**
 * The final writes of many replies in one statement: the same effect per row as `finalize`
 * without a hook (row, dedupe key release, usage ledger). Answers the ids it stored; a row already
 * final (stopped elsewhere) is not among them.
 */
export async function finalizeMany(db: Db, writes: FinalWrite[]): Promise<Set<string>> {
  const payload = toJson(
    writes.map((w) => ({
      id: w.messageId,
      content: w.content,
      status: w.status,
      finish_reason: w.finishReason,
      agent_id: w.agentId,
      agent_name: w.agentName,
      intent: w.intent,
      confidence: w.confidence,
      usage: w.usage,
      metadata: w.metadata,
      model: w.model,
      prompt_tokens: w.usage.prompt_tokens,
      completion_tokens: w.usage.completion_tokens,
      estimated: w.usage.estimated,
    })),
  );
  const rows = rowsOf<{ id: string }>(await finalizeStatement(db, { payload }));
  return new Set(rows.map((r) => r.id));
}

/**
 * The final write. Without a hook it is one statement (`finalizeMany` of one row). With one, the
 * hook runs first in a transaction (an extension takes its own locks before ours), then the final
 * UPDATE stores the fields it returned; when the row was already final the whole transaction rolls
 * back, so an extension's effect exists exactly when the reply was stored by this producer.
 */
export async function finalize(
  db: Db,
  w: FinalWrite,
  hook?: (tx: Tx) => Promise<CompleteExtra | undefined>,
): Promise<{ persisted: boolean; extra: CompleteExtra }> {
  const stored = async (on: Db, write: FinalWrite) => (await finalizeMany(on, [write])).has(write.messageId);
  if (!hook) return { persisted: await stored(db, w), extra: {} };
  try {
    return await db.transaction(async (tx) => {
      const extra = (await hook(tx)) ?? {};
      const stream = w.metadata.stream as StreamMeta | undefined;
      const metadata = stream
        ? { ...w.metadata, stream: { ...stream, complete_extra: { ...stream.complete_extra, ...extra } } }
        : w.metadata;
      if (!(await stored(tx as unknown as Db, { ...w, metadata }))) tx.rollback();
      return { persisted: true, extra };
    });
  } catch (err) {
    if (err instanceof TransactionRollbackError) return { persisted: false, extra: {} };
    throw err;
  }
}
