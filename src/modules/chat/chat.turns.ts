// Chat turns: admit, persist the turn in one statement, hand the reply to generation/ (replies.start).
import { hash as digest, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import { agentIds, resolveAgent } from '../agents/roster.js';
import type { Generation, ReplyOptions } from '../generation/generation.js';
import { DEDUPE_KEY_PREFIX } from '../generation/generation.repo.js';
import type { Replies } from '../generation/replies.js';
import type { Release } from './admission.js';
import * as repo from './chat.repo.js';
import { type ChatBody, deriveTitle } from './chat.schemas.js';
import type { Caller } from './chat.service.js';

/** Admission beyond validation: concurrency caps and budgets (rate limits run as a route hook). */
export interface TurnAdmission {
  /** Throws when the turn may not start; else returns the release of the slot it took. */
  admit(caller: Caller, sessionId: string): Promise<Release>;
}

export interface TurnServiceDeps {
  db: Db;
  log: Logger;
  replies: Pick<Replies, 'start'>;
  admission: TurnAdmission;
  isDraining(): boolean;
  instanceId: string;
}

/** Per-turn options for a module that runs chat turns of its own (the academy). */
export type TurnOptions = ReplyOptions & {
  /** Stored as the user message's metadata (a lesson's client metadata, ACADEMY.md §4). */
  userMetadata?: Record<string, unknown>;
};

/**
 * A persisted turn. `new`: this request started the reply; `attached`: an earlier identical
 * request (Idempotency-Key, or the same body while its reply streams) did, and this one follows it. Either way the
 * caller reads it with `replies.subscribe(messageId, …, { verified: true })`.
 */
export interface TurnStart {
  kind: 'new' | 'attached';
  messageId: string;
  sessionId: string;
  /** Aborts the reply (new turns only): the `cancel` disconnect policy. */
  cancel(): void;
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code === '23505' || e?.cause?.code === '23505';
}

const attached = (messageId: string, sessionId: string): TurnStart => ({
  kind: 'attached',
  messageId,
  sessionId,
  cancel: () => {},
});

// Shared: the reply keeps its options for its life; an empty object each would be ~56 bytes.
const NO_OPTIONS: TurnOptions = Object.freeze({});

export function createTurnService(deps: TurnServiceDeps) {
  const { db } = deps;

  async function attachByKey(scope: string, key: string, hash: string): Promise<TurnStart | null> {
    const found = await repo.findByIdempotencyKey(db, scope, key);
    if (!found?.assistant_message_id) return null;
    if (found.request_hash !== hash) throw new AppError('IDEMPOTENCY_CONFLICT');
    return attached(found.assistant_message_id, found.session_id);
  }

  async function start(
    caller: Caller,
    body: ChatBody,
    idempotencyKey: string | undefined,
    options: TurnOptions = NO_OPTIONS,
  ): Promise<TurnStart> {
    if (deps.isDraining()) {
      throw new AppError('SHUTTING_DOWN', undefined, undefined, { 'retry-after': '5' });
    }
    const agent = body.agent_id ? resolveAgent(body.agent_id) : undefined;
    if (body.agent_id && !agent) {
      throw new AppError('UNKNOWN_AGENT', `Unknown agent "${body.agent_id}".`, {
        valid_agent_ids: agentIds(),
      });
    }
    const sessionId = body.session_id ?? randomUUID();
    const scope = caller.userId ? `u:${caller.userId}` : `s:${sessionId}`;
    // One-shot hashing: a Hash object per turn cost more CPU than the rest of validation.
    const hash = digest(
      'sha256',
      JSON.stringify([body.message, body.session_id ?? null, body.agent_id ?? null, body.context ?? null]),
      'base64url',
    );
    if (idempotencyKey) {
      const found = await attachByKey(scope, idempotencyKey, hash);
      if (found) return found;
    }
    const release = await deps.admission.admit(caller, sessionId);
    try {
      const t = { caller, body, sessionId, scope, hash, idempotencyKey, options };
      const started = await insertAndStart({ ...t, agentId: options.fixedAgentId ?? agent?.id ?? null });
      // A reply's slot goes back with its last log flush; a request that started none gives it
      // back at once, since its client may post again right away.
      // whenDone, not a promise's then(): a held reply keeps one closure, no promise or reactions.
      if (started.kind === 'new') started.reply.whenDone(() => release());
      else release(true);
      return started.turn;
    } catch (err) {
      release(true);
      throw err;
    }
  }

  async function insertAndStart(t: {
    caller: Caller;
    body: ChatBody;
    /** The canonical id of the requested agent, already validated. */
    agentId: string | null;
    sessionId: string;
    scope: string;
    hash: string;
    idempotencyKey: string | undefined;
    options: TurnOptions;
    retried?: boolean;
  }): Promise<{ kind: 'new'; turn: TurnStart; reply: Generation } | { kind: 'attached'; turn: TurnStart }> {
    const { caller, body, sessionId, scope, hash, idempotencyKey } = t;
    const ids = { messageId: randomUUID(), userMessageId: randomUUID() };
    let result: repo.TurnInsertResult;
    try {
      result = await repo.insertTurn(db, {
        sessionId,
        userId: caller.userId,
        title: deriveTitle(body.message),
        agentId: t.agentId,
        context: body.context ?? null,
        userMessageId: ids.userMessageId,
        assistantMessageId: ids.messageId,
        content: body.message,
        userMetadata: t.options.userMetadata ?? null,
        idempotencyScope: scope,
        idempotencyKey: idempotencyKey ?? null,
        requestHash: hash,
        instanceId: deps.instanceId,
      });
    } catch (err) {
      // Two identical requests raced (same key, or keyless while the first reply streams): the
      // loser attaches to the winner's turn. A keyless winner may already have finished and
      // released its key; then this request is a turn of its own, tried once more.
      if (!isUniqueViolation(err)) throw err;
      const found = await attachByKey(scope, idempotencyKey ?? `${DEDUPE_KEY_PREFIX}${hash}`, hash);
      if (found) return { kind: 'attached', turn: found };
      if (idempotencyKey || t.retried) throw err;
      return insertAndStart({ ...t, retried: true });
    }
    if (result.kind === 'forbidden') throw new AppError('SESSION_NOT_FOUND');
    if (result.kind === 'duplicate')
      return { kind: 'attached', turn: attached(result.assistantMessageId, sessionId) };

    const reply = deps.replies.start(
      { ...ids, startedAt: result.startedAt },
      {
        message: body.message,
        requestedAgentId: body.agent_id,
        sessionId,
        userId: caller.userId,
        userSeq: result.userSeq,
        context: body.context ?? null,
        fixedAgentId: t.options.fixedAgentId,
        promptSuffix: t.options.promptSuffix,
      },
      t.options,
    );
    deps.log.info({ sessionId, messageId: ids.messageId }, 'turn persisted');
    return {
      kind: 'new',
      reply,
      turn: { kind: 'new', messageId: ids.messageId, sessionId, cancel: () => reply.abort('interrupted') },
    };
  }

  return { start };
}

export type TurnService = ReturnType<typeof createTurnService>;
