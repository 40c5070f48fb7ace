// Chat routes (API.md sections 1–3): thin — parse, call one service function, shape the answer.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { callerId } from '../../plugins/auth.js';
import { pipeSse } from '../../plugins/sse.js';
import { listAgents } from '../agents/roster.js';
import { parseCursor } from '../generation/events.js';
import { streamMetaOf, toMessage } from '../generation/generation.repo.js';
import type { Replies, ReplyStream } from '../generation/replies.js';
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
import type { TurnService } from './chat.turns.js';
import type { Encoder } from './encoders/encoder.js';
import { nativeSse } from './encoders/native.js';

export interface ChatRoutesDeps {
  chat: ChatService;
  turns: TurnService;
  replies: Replies;
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

/** Writes a reply to the client in one protocol; the route's whole streaming part. */
export function sendReply(
  request: FastifyRequest,
  reply: FastifyReply,
  stream: ReplyStream,
  opts: { encoder: Encoder; heartbeatMs: number; onClientClose(): void },
): Promise<void> {
  const frames = opts.encoder.encode(stream, (err) => request.log.error({ err }, 'stream subscriber failed'));
  return pipeSse(request, reply, frames, {
    heartbeatMs: opts.heartbeatMs,
    headers: opts.encoder.headers,
    onClientClose: opts.onClientClose,
  });
}

export async function chatRoutes(app: FastifyInstance, deps: ChatRoutesDeps) {
  const body = chatBodySchema(deps.maxMessageChars);
  const limit = (cls: 'chat' | 'read'): Record<string, unknown> => {
    const settings = deps.rateLimit?.(cls);
    return settings ? { rateLimit: settings } : {};
  };

  app.post<{ Body: ChatBody }>(
    '/stream',
    { schema: { body }, config: limit('chat') },
    async (request, reply) => {
      const caller = callerOf(request);
      const turn = await deps.turns.start(caller, request.body, idempotencyKeyOf(request));
      const gone = new AbortController();
      const stream = await deps.replies.subscribe(turn.messageId, null, caller, {
        signal: gone.signal,
        verified: true,
      });
      await sendReply(request, reply, stream, {
        encoder: nativeSse,
        heartbeatMs: deps.heartbeatMs,
        onClientClose() {
          gone.abort();
          // A disconnect is not a stop: under `continue` the reply runs to the end and is stored.
          if (deps.onDisconnect === 'cancel') turn.cancel();
        },
      });
    },
  );

  app.post<{ Body: ChatBody }>('/message', { schema: { body }, config: limit('chat') }, async (request) => {
    const caller = callerOf(request);
    const turn = await deps.turns.start(caller, request.body, idempotencyKeyOf(request));
    // Waits for the end of the turn, wherever it runs.
    const row = await deps.replies.result(turn.messageId, caller, { verified: true });
    if (row.status === 'failed' || row.status === 'interrupted') throw new AppError('GENERATION_FAILED');
    const { metadata } = toMessage(row);
    return {
      session_id: turn.sessionId,
      message_id: row.id,
      user_message_id: row.reply_to,
      message: row.content,
      agent_id: request.body.agent_id ?? row.agent_id,
      agent_name: row.agent_name,
      intent: row.intent,
      confidence: row.confidence,
      suggested_actions: streamMetaOf(row)?.suggested_actions ?? [],
      usage: row.usage,
      metadata: { ...metadata, status: row.status, finish_reason: row.finish_reason },
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
      const stream = await deps.replies.subscribe(request.params.message_id, after, callerOf(request), {
        signal: gone.signal,
      });
      await sendReply(request, reply, stream, {
        encoder: nativeSse,
        heartbeatMs: deps.heartbeatMs,
        onClientClose: () => gone.abort(),
      });
    },
  );

  app.post<{ Params: { message_id: string } }>(
    '/messages/:message_id/stop',
    { schema: { params: messageParamsSchema }, config: limit('read') },
    async (request) => deps.replies.stop(request.params.message_id, callerOf(request)),
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
