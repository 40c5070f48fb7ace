// Chat routes (API.md sections 1–3): thin — parse, call one service function, shape the answer.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { callerId } from '../../plugins/auth.js';
import { openSse, type SseStream } from '../../plugins/sse.js';
import { listAgents } from '../agents/roster.js';
import { parseCursor } from '../generation/events.js';
import type { LocalReplay, ReplySource } from '../generation/replay.js';
import {
  type ChatBody,
  chatBodySchema,
  historyQuerySchema,
  listSessionsQuerySchema,
  messageParamsSchema,
  renameBodySchema,
  resumeQuerySchema,
  sessionParamsSchema,
} from './chat.schemas.js';
import type { Caller, ChatService } from './chat.service.js';
import type { TurnService, TurnStart } from './chat.turns.js';

export interface ChatRoutesDeps {
  chat: ChatService;
  turns: TurnService;
  maxMessageChars: number;
  heartbeatMs: number;
  onDisconnect: 'continue' | 'cancel';
  /** Route-level rate-limit settings per class (see plugins/rate-limit.ts); undefined = none. */
  rateLimit?: (cls: 'chat' | 'read') => Record<string, unknown>;
}

export function callerOf(request: FastifyRequest): Caller {
  return { userId: callerId(request) };
}

export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (!key || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new AppError('BAD_REQUEST', 'Idempotency-Key must be 1–255 visible ASCII characters.');
  }
  return key;
}

/** Writes a local generation's log as it grows: every entry available on a wake-up goes out at once. */
async function pumpLocal({ generation: gen, from }: LocalReplay, sse: SseStream) {
  let i = from;
  for (;;) {
    while (i < gen.entries.length && !sse.closed) {
      const entry = gen.entries[i++]!;
      if (!sse.send(entry.id, entry.event)) await sse.drained();
    }
    if (gen.ended || sse.closed) return;
    await gen.changed();
  }
}

async function pump(source: ReplySource, sse: SseStream, request: FastifyRequest) {
  try {
    if ('generation' in source) {
      await pumpLocal(source, sse);
    } else {
      for await (const entry of source) {
        if (sse.closed) break;
        if (!sse.send(entry.id, entry.event)) await sse.drained();
      }
    }
  } catch (err) {
    request.log.error({ err }, 'stream subscriber failed');
    sse.send('0-0', {
      type: 'error',
      message: 'A transmissão foi interrompida. Tente novamente.',
      code: 'STREAM_FAILED',
      fallback_endpoint: '/api/v1/chat/message',
    });
  }
  sse.end();
}

export async function chatRoutes(app: FastifyInstance, deps: ChatRoutesDeps) {
  const body = chatBodySchema(deps.maxMessageChars);
  const limit = (cls: 'chat' | 'read'): Record<string, unknown> => {
    const settings = deps.rateLimit?.(cls);
    return settings ? { rateLimit: settings } : {};
  };

  const sourceOf = async (
    request: FastifyRequest,
    turn: TurnStart,
    signal: AbortSignal,
  ): Promise<ReplySource> =>
    turn.kind === 'new'
      ? { generation: turn.generation, from: 0 }
      : deps.turns.entries(callerOf(request), turn.messageId, null, signal, { checked: true });

  app.post<{ Body: ChatBody }>(
    '/stream',
    { schema: { body }, config: limit('chat') },
    async (request, reply) => {
      const caller = callerOf(request);
      const turn = await deps.turns.start(caller, request.body, idempotencyKeyOf(request));
      const gone = new AbortController();
      const source = await sourceOf(request, turn, gone.signal);
      const sse = openSse(request, reply, { heartbeatMs: deps.heartbeatMs });
      sse.onClientClose(() => {
        gone.abort();
        // A disconnect is not a stop: under `continue` the reply runs to the end and is stored.
        if (deps.onDisconnect === 'cancel' && turn.kind === 'new') turn.generation.abort('interrupted');
      });
      await pump(source, sse, request);
    },
  );

  app.post<{ Body: ChatBody }>('/message', { schema: { body }, config: limit('chat') }, async (request) => {
    const caller = callerOf(request);
    const turn = await deps.turns.start(caller, request.body, idempotencyKeyOf(request));
    let messageId: string;
    if (turn.kind === 'new') {
      messageId = (await turn.generation.done).messageId;
    } else {
      messageId = turn.messageId;
      const source = await deps.turns.entries(caller, turn.messageId, null, new AbortController().signal, {
        checked: true,
      });
      // Wait for the end of the attached turn, wherever it runs.
      if ('generation' in source) await source.generation.done;
      else for await (const _ of source);
    }
    const row = await deps.turns.message(messageId);
    if (row.status === 'failed' || row.status === 'interrupted') throw new AppError('GENERATION_FAILED');
    return {
      session_id: turn.sessionId,
      message_id: row.id,
      user_message_id: row.reply_to,
      message: row.content,
      agent_id: request.body.agent_id ?? row.agent_id,
      agent_name: row.agent_name,
      intent: row.intent,
      confidence: row.confidence,
      suggested_actions: turn.kind === 'new' ? (await turn.generation.done).suggestedActions : [],
      usage: row.usage,
      metadata: { ...row.metadata, status: row.status, finish_reason: row.finish_reason },
    };
  });

  app.get<{ Params: { message_id: string }; Querystring: { after?: string } }>(
    '/stream/:message_id',
    { schema: { params: messageParamsSchema, querystring: resumeQuerySchema }, config: limit('read') },
    async (request, reply) => {
      const raw = (request.headers['last-event-id'] as string | undefined) ?? request.query.after;
      const after = parseCursor(raw);
      if (raw && !after)
        throw new AppError('VALIDATION_ERROR', 'Last-Event-ID is not a cursor of this stream.');
      const gone = new AbortController();
      const source = await deps.turns.entries(
        callerOf(request),
        request.params.message_id,
        after,
        gone.signal,
      );
      const sse = openSse(request, reply, { heartbeatMs: deps.heartbeatMs });
      sse.onClientClose(() => gone.abort());
      await pump(source, sse, request);
    },
  );

  app.post<{ Params: { message_id: string } }>(
    '/messages/:message_id/stop',
    { schema: { params: messageParamsSchema }, config: limit('read') },
    async (request) => deps.turns.stop(callerOf(request), request.params.message_id),
  );

  app.get<{ Querystring: { limit: number; offset: number; cursor?: string } }>(
    '/sessions',
    { schema: { querystring: listSessionsQuerySchema }, config: limit('read') },
    async (request) => deps.chat.listSessions(callerOf(request), request.query),
  );

  app.get<{ Params: { id: string } }>(
    '/sessions/:id',
    { schema: { params: sessionParamsSchema }, config: limit('read') },
    async (request) => deps.chat.getSession(callerOf(request), request.params.id),
  );

  app.patch<{ Params: { id: string }; Body: { title: string } }>(
    '/sessions/:id',
    { schema: { params: sessionParamsSchema, body: renameBodySchema }, config: limit('read') },
    async (request) => deps.chat.renameSession(callerOf(request), request.params.id, request.body.title),
  );

  app.delete<{ Params: { id: string } }>(
    '/sessions/:id',
    { schema: { params: sessionParamsSchema }, config: limit('read') },
    async (request, reply) => {
      await deps.chat.deleteSession(callerOf(request), request.params.id);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { id: string } }>(
    '/sessions/:id/restore',
    { schema: { params: sessionParamsSchema }, config: limit('read') },
    async (request) => deps.chat.restoreSession(callerOf(request), request.params.id),
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; before?: string } }>(
    '/history/:id',
    { schema: { params: sessionParamsSchema, querystring: historyQuerySchema }, config: limit('read') },
    async (request) => deps.chat.history(callerOf(request), request.params.id, request.query),
  );

  app.delete<{ Params: { id: string } }>(
    '/history/:id',
    { schema: { params: sessionParamsSchema }, config: limit('read') },
    async (request, reply) => {
      await deps.chat.clearHistory(callerOf(request), request.params.id);
      return reply.code(204).send();
    },
  );

  app.get('/agents', { config: limit('read') }, async () =>
    listAgents().map((a) => ({
      id: a.id,
      name: a.name,
      avatar: a.avatar,
      role: a.role,
      description: a.description,
      status: 'active',
    })),
  );
}
