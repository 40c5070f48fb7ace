// Chat routes (API.md sections 1–3): thin — parse, call one service function, shape the answer.
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { callerId } from '../../plugins/auth.js';
import { callerKey } from '../../plugins/rate-limit.js';
import { openSse, type SseStream } from '../../plugins/sse.js';
import { listAgents } from '../agents/roster.js';
import { parseCursor, type StreamEntry } from '../generation/events.js';
import { streamMetaOf, toMessage } from '../generation/generation.repo.js';
import type { Replies, ReplyCaller, ReplySink, Subscription } from '../generation/replies.js';
import {
  agentListSchema,
  chatBodySchema,
  eventStreamSchema,
  historyQuerySchema,
  historySchema,
  listSessionsQuerySchema,
  messageParamsSchema,
  messageSchema,
  noContentSchema,
  renameBodySchema,
  resumeQuerySchema,
  sessionListSchema,
  sessionParamsSchema,
  sessionSchema,
  turnAnswerSchema,
} from './chat.schemas.js';
import type { Caller, ChatService } from './chat.service.js';
import type { TurnService, TurnStart } from './chat.turns.js';
import type { Encoder, Framer } from './encoders/encoder.js';
import { nativeSse } from './encoders/native.js';

export interface ChatRoutesDeps {
  chat: ChatService;
  turns: TurnService;
  replies: Replies;
  maxMessageChars: number;
  heartbeatMs: number;
  onDisconnect: 'continue' | 'cancel';
}

export function callerOf(request: FastifyRequest): Caller {
  return { userId: callerId(request) };
}

/** A turn's caller: the chat rate limit is a step of turn admission, answered in these headers. */
/** The caller of a chat turn: its rate-limit bucket, and where the limit's headers go (when a reply is at hand). */
export function turnCallerOf(request: FastifyRequest, reply?: FastifyReply): Caller {
  const caller: Caller = { userId: callerId(request), rateKey: callerKey(request) };
  if (reply) caller.setHeaders = (h) => reply.headers(h);
  return caller;
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

/** A reply piped into an open event stream: each batch framed and written as it comes. */
class SseReplySink implements ReplySink {
  constructor(
    private readonly sse: SseStream,
    private readonly framer: Framer,
    private readonly stream: Subscription,
    private readonly log: FastifyBaseLogger,
  ) {}

  push(batch: readonly StreamEntry[]): boolean {
    if (this.sse.closed) return true;
    if (this.sse.write(this.framer.batch(batch))) return true;
    // The client is behind: the reply waits in its log until the socket drains (or closes).
    void this.sse.drained().then(() => this.stream.resume());
    return false;
  }

  end(): void {
    this.finish(false);
  }

  fail(err: unknown): void {
    this.log.error({ err }, 'stream subscriber failed');
    this.finish(true);
  }

  private finish(failed: boolean): void {
    const last = this.framer.end(failed);
    if (last) this.sse.write(last);
    this.sse.end();
  }
}

/**
 * Writes a reply to the client in one protocol; the route's whole streaming part. Returns once the
 * stream is open: the reply is pushed to the response as it comes, so a held stream keeps no
 * suspended route handler or loop. The client leaving closes the subscription at once (and runs
 * `onClientClose`, if given).
 */
export function sendReply(
  request: FastifyRequest,
  reply: FastifyReply,
  stream: Subscription,
  opts: { encoder: Encoder; heartbeatMs: number; onClientClose?(): void },
): void {
  const sse = openSse(request, reply, { heartbeatMs: opts.heartbeatMs, headers: opts.encoder.headers });
  const { onClientClose } = opts;
  sse.onClientClose(
    onClientClose
      ? () => {
          stream.close();
          onClientClose();
        }
      : () => stream.close(),
  );
  stream.pipe(new SseReplySink(sse, opts.encoder.open(), stream, request.log));
}

/**
 * Streams the reply of a turn this request started or attached to. A disconnect is not a stop:
 * under `continue` the reply runs to the end and is stored; under `cancel` it stops.
 */
export async function sendTurn(
  request: FastifyRequest,
  reply: FastifyReply,
  turn: TurnStart,
  caller: ReplyCaller,
  deps: Pick<ChatRoutesDeps, 'replies' | 'heartbeatMs' | 'onDisconnect'>,
  encoder: Encoder,
): Promise<void> {
  const stream = await deps.replies.subscribe(turn.messageId, null, caller, { verified: true });
  sendReply(request, reply, stream, {
    encoder,
    heartbeatMs: deps.heartbeatMs,
    onClientClose: deps.onDisconnect === 'cancel' ? () => turn.cancel() : undefined,
  });
}

const keyHeaders = z.looseObject({ 'idempotency-key': z.string().optional() });
const resumeHeaders = z.looseObject({ 'last-event-id': z.string().max(40).optional() });
const stream = { 200: eventStreamSchema };

export const chatRoutes: FastifyPluginAsyncZod<ChatRoutesDeps> = async (app, deps) => {
  const body = chatBodySchema(deps.maxMessageChars);

  app.post(
    '/stream',
    { schema: { body, headers: keyHeaders, response: stream }, config: { rateLimitClass: 'chat' } },
    async (request, reply) => {
      const caller = turnCallerOf(request, reply);
      const turn = await deps.turns.start(caller, request.body, idempotencyKeyOf(request));
      await sendTurn(request, reply, turn, caller, deps, nativeSse);
    },
  );

  app.post(
    '/message',
    {
      schema: { body, headers: keyHeaders, response: { 200: turnAnswerSchema } },
      config: { rateLimitClass: 'chat' },
    },
    async (request, reply) => {
      const caller = turnCallerOf(request, reply);
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
    },
  );

  app.get(
    '/stream/:message_id',
    {
      schema: {
        params: messageParamsSchema,
        querystring: resumeQuerySchema,
        headers: resumeHeaders,
        response: stream,
      },
      config: { rateLimitClass: 'read' },
    },
    async (request, reply) => {
      const raw = request.headers['last-event-id'] ?? request.query.after;
      const after = parseCursor(raw);
      if (raw && !after)
        throw new AppError('VALIDATION_ERROR', 'Last-Event-ID is not a cursor of this stream.');
      const replyStream = await deps.replies.subscribe(request.params.message_id, after, callerOf(request));
      sendReply(request, reply, replyStream, { encoder: nativeSse, heartbeatMs: deps.heartbeatMs });
    },
  );

  app.post(
    '/messages/:message_id/stop',
    {
      schema: { params: messageParamsSchema, response: { 200: messageSchema } },
      config: { rateLimitClass: 'read' },
    },
    async (request) => deps.replies.stop(request.params.message_id, callerOf(request)),
  );

  app.get(
    '/sessions',
    {
      schema: { querystring: listSessionsQuerySchema, response: { 200: sessionListSchema } },
      config: { rateLimitClass: 'read' },
    },
    async (request) => deps.chat.listSessions(callerOf(request), request.query),
  );

  app.get(
    '/sessions/:id',
    {
      schema: { params: sessionParamsSchema, response: { 200: sessionSchema } },
      config: { rateLimitClass: 'read' },
    },
    async (request) => deps.chat.getSession(callerOf(request), request.params.id),
  );

  app.patch(
    '/sessions/:id',
    {
      schema: { params: sessionParamsSchema, body: renameBodySchema, response: { 200: sessionSchema } },
      config: { rateLimitClass: 'read' },
    },
    async (request) => deps.chat.renameSession(callerOf(request), request.params.id, request.body.title),
  );

  app.delete(
    '/sessions/:id',
    {
      schema: { params: sessionParamsSchema, response: { 204: noContentSchema } },
      config: { rateLimitClass: 'read' },
    },
    async (request, reply) => {
      await deps.chat.deleteSession(callerOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/sessions/:id/restore',
    {
      schema: { params: sessionParamsSchema, response: { 200: sessionSchema } },
      config: { rateLimitClass: 'read' },
    },
    async (request) => deps.chat.restoreSession(callerOf(request), request.params.id),
  );

  app.get(
    '/history/:id',
    {
      schema: {
        params: sessionParamsSchema,
        querystring: historyQuerySchema,
        response: { 200: historySchema },
      },
      config: { rateLimitClass: 'read' },
    },
    async (request) => deps.chat.history(callerOf(request), request.params.id, request.query),
  );

  app.delete(
    '/history/:id',
    {
      schema: { params: sessionParamsSchema, response: { 204: noContentSchema } },
      config: { rateLimitClass: 'read' },
    },
    async (request, reply) => {
      await deps.chat.clearHistory(callerOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/agents',
    { schema: { response: { 200: agentListSchema } }, config: { rateLimitClass: 'read' } },
    async () =>
      listAgents().map((a) => ({
        id: a.id,
        name: a.name,
        avatar: a.avatar,
        role: a.role,
        description: a.description,
        status: 'active' as const,
      })),
  );
};
