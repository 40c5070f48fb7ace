// Writes of a running reply: checkpoints, heartbeats, the final UPDATE (with the usage ledger), the sweeper.
import { sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../../db/client.js';
import { executeNamed } from '../../db/prepared.js';
import type { ModelUsage } from '../llm/provider.js';

export type FinalStatus = 'completed' | 'stopped' | 'interrupted' | 'failed';

export async function checkpoint(db: Db, messageId: string, content: string | null): Promise<void> {
  if (content === null) {
    await db.execute(
      sql`update chat_messages set heartbeat_at = now() where id = ${messageId} and status = 'streaming'`,
    );
    return;
  }
  await db.execute(sql`
    update chat_messages set content = ${content}, heartbeat_at = now(), updated_at = now()
    where id = ${messageId} and status = 'streaming'`);
}

export interface FinalWrite {
  messageId: string;
  content: string;
  status: FinalStatus;
  finishReason: string;
  agentId: string;
  agentName: string;
  intent: string | null;
  confidence: number | null;
  usage: ModelUsage;
  model: string;
  metadata: Record<string, unknown>;
}

/**
 * One statement: the final content, status, finish reason, agent and usage on the row, plus the
 * usage ledger entry. A row the sweeper already marked `interrupted` is still finalised: the
 * producer was alive after all, and its text is the better one.
 */
export async function finalize(db: Db, w: FinalWrite): Promise<boolean> {
  const rows = rowsOf<{ id: string }>(
    await executeNamed(
      db,
      'chat_finalize_v1',
      sql`
      with m as (
        update chat_messages set content = ${w.content}, status = ${w.status}, finish_reason = ${w.finishReason},
          agent_id = ${w.agentId}, agent_name = ${w.agentName}, intent = ${w.intent}, confidence = ${w.confidence},
          usage = ${JSON.stringify(w.usage)}::jsonb, metadata = metadata || ${JSON.stringify(w.metadata)}::jsonb,
          heartbeat_at = null, updated_at = now()
        where id = ${w.messageId} and status in ('streaming', 'interrupted')
        returning id, session_id, user_id
      ), l as (
        insert into generation_usage (message_id, session_id, user_id, agent_id, model, prompt_tokens, completion_tokens, estimated, status)
        select m.id, m.session_id, m.user_id, ${w.agentId}, ${w.model}, ${w.usage.prompt_tokens},
               ${w.usage.completion_tokens}, ${w.usage.estimated}, ${w.status}
        from m
        on conflict (message_id) do update set prompt_tokens = excluded.prompt_tokens,
          completion_tokens = excluded.completion_tokens, estimated = excluded.estimated, status = excluded.status
        returning 1
      )
      select id from m`,
    ),
  );
  return rows.length > 0;
}

/** Marks replies whose producer stopped heart-beating (a crashed instance) as interrupted. */
export async function sweepOrphans(db: Db, staleAfterMs: number): Promise<string[]> {
  return rowsOf<{ id: string }>(
    await db.execute(sql`
      update chat_messages set status = 'interrupted', finish_reason = 'interrupted', updated_at = now(),
        metadata = metadata || '{"interrupted_by":"sweeper"}'::jsonb
      where status = 'streaming' and heartbeat_at < now() - make_interval(secs => ${staleAfterMs / 1000})
      returning id`),
  ).map((r) => r.id);
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
      select (status = 'streaming' and heartbeat_at > now() - make_interval(secs => ${staleAfterMs / 1000})) as alive
      from chat_messages where id = ${messageId}`),
  );
  return rows[0]?.alive === true;
}
