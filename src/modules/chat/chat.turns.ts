// Chat turns: admit, persist in one statement, start the generation; attach, resume and stop.
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import { agentIds, resolveAgent } from '../agents/roster.js';
import type { Cursor, StreamEntry } from '../generation/events.js';
import type { Generation, GenerationDeps } from '../generation/generation.js';
import { startGeneration } from '../generation/generation.js';
import type { GenerationRegistry } from '../generation/registry.js';
import { localReplay, type ReplySource, storedEntries, withFallback } from '../generation/replay.js';
import * as repo from './chat.repo.js';
import { type ChatBody, deriveTitle, toMessage } from './chat.schemas.js';
import type { Caller } from './chat.service.js';

/** Cross-instance pieces (Redis); null on a single instance with in-process stores. */
export interface RemoteGenerations {
  /** Entries from the shared log, or null when it has none for this message. */
  entries(
    messageId: string,
    after: Cursor | null,
    signal: AbortSignal,
  ): Promise<AsyncIterable<StreamEntry> | null>;
  /** Asks whichever instance runs the generation to stop it. */
  requestStop(messageId: string): Promise<void>;
}

/** Admission beyond validation: concurrency caps and budgets (rate limits run as a route hook). */
export interface TurnAdmission {
  /** Throws when the turn may not start; else returns the release of the slot it took. */
  admit(caller: Caller, sessionId: string): Promise<() => void>;
}

export interface TurnServiceDeps {
  db: Db;
  log: Logger;
  registry: GenerationRegistry;
  generation: Omit<GenerationDeps, 'log'>;
  remote: RemoteGenerations | null;
  admission: TurnAdmission;
  instanceId: string;
  isDraining(): boolean;
  /** A streaming row whose producer has not beaten for this long is dead (same rule as the sweeper). */
  staleAfterMs: number;
}

export type TurnStart =
  | { kind: 'new'; generation: Generation; sessionId: string }
  | { kind: 'attached'; messageId: string; sessionId: string };

const DEDUPE_WINDOW_S = 30;

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code === '23505' || e?.cause?.code === '23505';
}

export function createTurnService(deps: TurnServiceDeps) {
  const { db } = deps;

  async function attachByKey(scope: string, key: string, hash: string): Promise<TurnStart | null> {
    const found = await repo.findByIdempotencyKey(db, scope, key);
    if (!found?.assistant_message_id) return null;
    if (found.request_hash !== hash) throw new AppError('IDEMPOTENCY_CONFLICT');
    return { kind: 'attached', messageId: found.assistant_message_id, sessionId: found.session_id };
  }

  async function loadVisibleMessage(caller: Caller, messageId: string) {
    if (!/^[0-9a-f-]{36}$/i.test(messageId)) throw new AppError('MESSAGE_NOT_FOUND');
    const row = await repo.getMessage(db, messageId);
    const visible =
      row && !row.session_deleted && (row.session_user_id === null || row.session_user_id === caller.userId);
    if (!row || !visible || row.role !== 'assistant') throw new AppError('MESSAGE_NOT_FOUND');
    return row;
  }

  return {
    async start(caller: Caller, body: ChatBody, idempotencyKey: string | undefined): Promise<TurnStart> {
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
      const hash = createHash('sha256')
        .update(
          JSON.stringify([
            body.message,
            body.session_id ?? null,
            body.agent_id ?? null,
            body.context ?? null,
          ]),
        )
        .digest('base64url');
      if (idempotencyKey) {
        const attached = await attachByKey(scope, idempotencyKey, hash);
        if (attached) return attached;
      }
      const release = await deps.admission.admit(caller, sessionId);
      try {
        const started = await insertAndStart({
          caller,
          body,
          agentId: agent?.id ?? null,
          sessionId,
          scope,
          hash,
          idempotencyKey,
        });
        if (started.kind === 'new') started.generation.done.finally(release);
        else release();
        return started;
      } catch (err) {
        release();
        throw err;
      }
    },

    /** Entries of a reply after a cursor: live on this instance, from the shared log, or rebuilt. */
    entries,
    stop,
    message,
  };

  async function insertAndStart(t: {
    caller: Caller;
    body: ChatBody;
    /** The canonical id of the requested agent, already validated. */
    agentId: string | null;
    sessionId: string;
    scope: string;
    hash: string;
    idempotencyKey: string | undefined;
  }): Promise<TurnStart> {
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
        idempotencyScope: scope,
        idempotencyKey: idempotencyKey ?? null,
        requestHash: hash,
        instanceId: deps.instanceId,
        dedupeWindowS: DEDUPE_WINDOW_S,
      });
    } catch (err) {
      // Two requests with one key raced; the loser attaches to the winner's turn.
      if (idempotencyKey && isUniqueViolation(err)) {
        const attached = await attachByKey(scope, idempotencyKey, hash);
        if (attached) return attached;
      }
      throw err;
    }
    if (result.kind === 'forbidden') throw new AppError('SESSION_NOT_FOUND');
    if (result.kind === 'duplicate')
      return { kind: 'attached', messageId: result.assistantMessageId, sessionId };

    const generation = startGeneration({ ...deps.generation, log: deps.log }, ids, {
      message: body.message,
      requestedAgentId: body.agent_id,
      sessionId,
      userId: caller.userId,
      userSeq: result.userSeq,
      context: body.context ?? null,
    });
    deps.registry.add(generation);
    deps.log.info({ sessionId, messageId: ids.messageId }, 'turn persisted');
    return { kind: 'new', generation, sessionId };
  }

  async function entries(
    caller: Caller,
    messageId: string,
    after: Cursor | null,
    signal: AbortSignal,
    opts: { checked?: boolean } = {},
  ): Promise<ReplySource> {
    const first = opts.checked ? undefined : await loadVisibleMessage(caller, messageId);
    const local = deps.registry.get(messageId);
    if (local) return localReplay(local, after);
    const stored = async function* (from: Cursor | null) {
      const row = first ?? (await loadVisibleMessage(caller, messageId));
      yield* storedEntries(row, from, () => repo.getMessage(db, messageId), {
        pollMs: 250,
        signal,
        staleMs: deps.staleAfterMs,
      });
    };
    const remote = await deps.remote?.entries(messageId, after, signal);
    return remote ? withFallback(remote, after, stored) : stored(after);
  }

  async function stop(caller: Caller, messageId: string) {
    const row = await loadVisibleMessage(caller, messageId);
    if (row.status !== 'streaming') {
      throw new AppError('MESSAGE_NOT_RUNNING', undefined, { message: toMessage(row) });
    }
    const local = deps.registry.get(messageId);
    if (local) {
      local.abort('stopped');
      await local.done;
    } else if (deps.remote) {
      await deps.remote.requestStop(messageId);
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        const now = await repo.getMessage(db, messageId);
        if (now && now.status !== 'streaming') break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const after = await repo.getMessage(db, messageId);
    if (after?.status === 'streaming') {
      // No live producer answered (it died): store what the last checkpoint kept, as stopped.
      await repo.markStopped(db, messageId);
      return toMessage((await repo.getMessage(db, messageId))!);
    }
    return toMessage(after!);
  }

  async function message(messageId: string) {
    const row = await repo.getMessage(db, messageId);
    if (!row) throw new AppError('MESSAGE_NOT_FOUND');
    return row;
  }
}

export type TurnService = ReturnType<typeof createTurnService>;
