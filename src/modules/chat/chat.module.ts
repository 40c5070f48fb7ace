// Composes the chat turn: registry, generation, pipeline, services and routes, over the app's infrastructure.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { DbHandle } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { TurnModel } from '../agents/offline.js';
import { personas } from '../agents/personas.js';
import { type PipelineDeps, runPipeline } from '../agents/pipeline.js';
import { getAgent } from '../agents/roster.js';
import type { EventMirror } from '../generation/generation.js';
import { createRegistry, type GenerationRegistry } from '../generation/registry.js';
import { createReplies, type RemoteGenerations, type Replies } from '../generation/replies.js';
import type { ReplyWriter } from '../generation/writer.js';
import { buildPrompt } from '../llm/prompt.js';
import type { MemoryStore } from '../memory/memory.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Admission } from './admission.js';
import * as repo from './chat.repo.js';
import { chatRoutes } from './chat.routes.js';
import { type Caller, type ChatService, createChatService } from './chat.service.js';
import { createTurnService, type TurnAdmission, type TurnService } from './chat.turns.js';
import { maritacaRoutes, providerForTurn } from './maritaca.routes.js';
import { uiRoutes } from './ui.routes.js';

export interface ChatModuleDeps {
  config: Config;
  db: DbHandle;
  log: Logger;
  model: TurnModel;
  memory: MemoryStore;
  instanceId: string;
  isDraining(): boolean;
  remote: RemoteGenerations | null;
  mirror: EventMirror | null;
  /** Cross-instance caps and budgets; the local concurrency cap always applies. */
  admission?: Admission;
  searchContracts?: PipelineDeps['searchContracts'];
  registry: GenerationRegistry;
  /** Batches every reply's checkpoints and final writes (one per app, built with the database). */
  writer: ReplyWriter;
  /** Turn counters and error counters; optional so the module builds without them. */
  metrics?: Metrics;
  /** When a producer counts as dead; shared with the sweeper and the Redis follower. */
  staleAfterMs: number;
}

export const userKeyOf = (userId: string | null, sessionId: string) => userId ?? `anon:${sessionId}`;

export function createGenerationRegistry(): GenerationRegistry {
  return createRegistry({
    retainMs: 15_000,
    maxRetained: 500,
    userKey: (g) => userKeyOf(g.userId, g.sessionId),
  });
}

/** What other modules use to run and read chat turns (the academy runs its turns through these). */
export interface ChatModule {
  chat: ChatService;
  turns: TurnService;
  replies: Replies;
}

export async function registerChat(app: FastifyInstance, deps: ChatModuleDeps): Promise<ChatModule> {
  const { config, db, registry } = deps;

  const pipelineDeps: PipelineDeps = {
    model: deps.model,
    memory: deps.memory,
    maxTokens: config.LLM_MAX_TOKENS,
    log: deps.log,
    searchContracts: deps.searchContracts,
    async loadHistory(sessionId, beforeSeq) {
      return (await repo.recentForPrompt(db.db, sessionId, beforeSeq, 40)).reverse();
    },
    buildMessages: (parts) =>
      buildPrompt({
        systemPrompt: [
          personas[parts.agentId]?.systemPrompt ?? getAgent(parts.agentId).intro,
          parts.promptSuffix,
        ]
          .filter(Boolean)
          .join('\n\n'),
        history: parts.history,
        memory: parts.memory,
        userMessage: parts.userMessage,
        historyTokenBudget: config.PROMPT_HISTORY_TOKENS,
        context: parts.context ?? undefined,
      }),
  };

  const localCap: TurnAdmission = {
    async admit(caller: Caller, sessionId: string) {
      const userKey = userKeyOf(caller.userId, sessionId);
      if (registry.runningFor(userKey) >= config.MAX_CONCURRENT_GENERATIONS) {
        throw new AppError('TOO_MANY_GENERATIONS', undefined, { limit: config.MAX_CONCURRENT_GENERATIONS });
      }
      return deps.admission
        ? deps.admission.admit({
            userKey,
            userId: caller.userId,
            rateKey: caller.rateKey,
            onHeaders: caller.setHeaders,
          })
        : () => {};
    },
  };

  const replies = createReplies({
    db: db.db,
    log: deps.log,
    registry,
    remote: deps.remote,
    staleAfterMs: deps.staleAfterMs,
    producer: {
      writer: deps.writer,
      finalWriteRetryMs: config.FINAL_WRITE_RETRY_MS,
      mirror: deps.mirror,
      metrics: deps.metrics?.turns,
      // A turn's context may name an operator-allowed model (Maritaca mode, maritaca.routes.ts).
      pipeline: (input, signal) =>
        runPipeline(
          { ...pipelineDeps, model: providerForTurn(deps.model, input.context, config.LLM_ALLOWED_MODELS) },
          input,
          signal,
        ),
      async onFinished(outcome, input) {
        // Memory feeds a real model's prompt; the offline agent's canned answers are not worth keeping.
        if (outcome.status !== 'completed' || !outcome.content || deps.model.kind === 'offline') return;
        const at = new Date().toISOString();
        await deps.memory.rememberTurn(input.sessionId, {
          user: input.message,
          assistant: outcome.content,
          agentId: outcome.agentId,
          at,
        });
        if (input.userId && outcome.intent === 'investigate') {
          await deps.memory.rememberEpisode(
            input.userId,
            `${at.slice(0, 10)}: perguntou "${input.message.slice(0, 200)}"`,
          );
        }
      },
    },
  });
  const turns = createTurnService({
    db: db.db,
    log: deps.log,
    replies,
    instanceId: deps.instanceId,
    isDraining: deps.isDraining,
    admission: localCap,
  });
  const chat = createChatService({ db: db.db, restoreDays: config.SESSION_RESTORE_DAYS });

  const routeDeps = {
    prefix: '/api/v1/chat',
    chat,
    turns,
    replies,
    maxMessageChars: config.CHAT_MAX_MESSAGE_CHARS,
    heartbeatMs: config.SSE_HEARTBEAT_MS,
    onDisconnect: config.GENERATION_ON_DISCONNECT,
  };
  await app.register(chatRoutes, routeDeps);
  // The AI SDK protocol (AI-SDK.md): the same turns, encoded as a UI message stream.
  await app.register(uiRoutes, routeDeps);
  await app.register(maritacaRoutes, {
    prefix: '/api/v1/chat',
    turns,
    replies,
    model: deps.model,
    maxMessageChars: config.CHAT_MAX_MESSAGE_CHARS,
    allowedModels: config.LLM_ALLOWED_MODELS,
  });
  return { chat, turns, replies };
}
