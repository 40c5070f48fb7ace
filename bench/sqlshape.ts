// The exact SQL our repos send, captured from the functions themselves so the floor and the EXPLAINs never drift.
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Db } from '../src/db/client.js';
import { insertTurn } from '../src/modules/chat/chat.repo.js';
import { finalize } from '../src/modules/generation/writer.repo.js';

export interface Statement {
  text: string;
  params: unknown[];
}

/**
 * A parameter of a per-turn statement: a value fixed for every turn, a slot the floor fills, or a
 * text holding slots (a JSON batch of rows) in which the floor replaces each marker.
 */
export type Param =
  | { value: unknown }
  | { slot: string }
  | { template: string; markers: Array<[string, string]> };

export interface BoundStatement {
  text: string;
  params: Param[];
}

/** What the floor needs to do one turn's writes: the two statements, with slots for per-turn values. */
export interface TurnSql {
  insertTurn: BoundStatement;
  finalize: BoundStatement;
}

/** Runs a repo function against a stand-in `db` and returns every statement it sent, as Postgres sees it. */
export async function captureSql(fn: (db: Db) => Promise<unknown>): Promise<Statement[]> {
  const seen: SQL[] = [];
  const fake = {
    execute: async (q: SQL) => {
      seen.push(q);
      // Enough shape for the callers' result handling (first row, a count column).
      return {
        rows: [{ n: 0, user_seq: 1, created: true, dup_user: null, dup_assistant: null, inserted: 1 }],
      };
    },
  } as unknown as Db;
  await fn(fake);
  const dialect = new PgDialect();
  return seen.map((q) => {
    const { sql: text, params } = dialect.sqlToQuery(q);
    return { text, params };
  });
}

// Distinct marker values: wherever one shows up among the captured parameters, the floor puts its own value.
const SLOTS = {
  sessionId: 'slot-session-id',
  title: 'slot-title',
  content: 'slot-content',
  userMessageId: '00000000-0000-4000-8000-000000000001',
  assistantMessageId: '00000000-0000-4000-8000-000000000002',
  scope: 'slot-scope',
  hash: 'slot-hash',
  instanceId: 'slot-instance',
} as const;

function bind(st: Statement | undefined, what: string): BoundStatement {
  if (!st) throw new Error(`${what} sent no statement`);
  const bySlot = new Map<unknown, string>(Object.entries(SLOTS).map(([k, v]) => [v, k]));
  return {
    text: st.text,
    params: st.params.map((p): Param => {
      if (bySlot.has(p)) return { slot: bySlot.get(p)! };
      const markers = Object.entries(SLOTS)
        .filter(([, v]) => typeof p === 'string' && p.includes(v))
        .map(([k, v]): [string, string] => [v, k]);
      return markers.length > 0 ? { template: p as string, markers } : { value: p };
    }),
  };
}

/**
 * The statements of an anonymous turn without a session id or Idempotency-Key (what the benchmark
 * sends), finalised with the recorded reply: only ids, title, content, scope and hash vary per turn.
 */
export async function turnSql(reply: {
  content: string;
  agentId: string;
  agentName: string;
  intent: string | null;
  confidence: number | null;
  usage: { prompt_tokens: number; completion_tokens: number; estimated: boolean };
}): Promise<TurnSql> {
  const [insert] = await captureSql((db) =>
    insertTurn(db, {
      sessionId: SLOTS.sessionId,
      userId: null,
      title: SLOTS.title,
      agentId: null,
      context: null,
      userMessageId: SLOTS.userMessageId,
      assistantMessageId: SLOTS.assistantMessageId,
      content: SLOTS.content,
      userMetadata: null,
      idempotencyScope: SLOTS.scope,
      idempotencyKey: null,
      requestHash: SLOTS.hash,
      instanceId: SLOTS.instanceId,
    }),
  );
  const [final] = await captureSql((db) =>
    finalize(db, {
      messageId: SLOTS.assistantMessageId,
      content: reply.content,
      status: 'completed',
      finishReason: 'stop',
      agentId: reply.agentId,
      agentName: reply.agentName,
      intent: reply.intent,
      confidence: reply.confidence,
      usage: reply.usage,
      model: 'offline',
      metadata: {},
    }),
  );
  return { insertTurn: bind(insert, 'insertTurn'), finalize: bind(final, 'finalize') };
}

/** EXPLAIN (ANALYZE, BUFFERS) of a captured statement, with the same bind parameters. */
export const explainOf = (st: Statement): Statement => ({
  text: `explain (analyze, buffers) ${st.text}`,
  params: st.params,
});
