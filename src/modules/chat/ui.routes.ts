// The AI SDK routes (AI-SDK.md §2): the native turn and resume, through the AI SDK encoder.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  type ChatRoutesDeps,
  callerOf,
  idempotencyKeyOf,
  sendReply,
  sendTurn,
  turnCallerOf,
} from './chat.routes.js';
import { eventStreamSchema, noContentSchema, SESSION_ID } from './chat.schemas.js';
import { aiSdkUi } from './encoders/ai-sdk.js';
import { checkUiEnvelope, toTurnBody, uiBodySchema, uiStreamParamsSchema } from './ui.schemas.js';

const keyHeaders = z.looseObject({ 'idempotency-key': z.string().optional() });

export const uiRoutes: FastifyPluginAsyncZod<ChatRoutesDeps> = async (app, deps) => {
  app.post(
    '/ui',
    {
      schema: { body: uiBodySchema, headers: keyHeaders, response: { 200: eventStreamSchema } },
      config: { rateLimitClass: 'chat' },
      // 400 (not an object) and UNSUPPORTED_TRIGGER come before the schema's 422s.
      preValidation: async (request) => checkUiEnvelope(request.body),
    },
    async (request, reply) => {
      const caller = turnCallerOf(request, reply);
      const body = toTurnBody(request.body, deps.maxMessageChars);
      const turn = await deps.turns.start(caller, body, idempotencyKeyOf(request));
      // A disconnect (chat.stop() included) is not a stop: under `continue` the reply runs on.
      await sendTurn(request, reply, turn, caller, deps, aiSdkUi);
    },
  );

  // Resume by chat id: the running reply replayed from its start under its own id, then followed live.
  app.get(
    '/ui/:chatId/stream',
    {
      schema: {
        params: uiStreamParamsSchema,
        response: { 200: eventStreamSchema, 204: noContentSchema },
      },
      config: { rateLimitClass: 'read' },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const { chatId } = request.params;
      // No session can have a malformed id, so there is nothing to resume (204, like a new chat).
      const messageId = SESSION_ID.test(chatId) ? await deps.replies.activeIn(chatId, caller) : undefined;
      if (!messageId) return reply.code(204).send(null);
      const replyStream = await deps.replies.subscribe(messageId, null, caller);
      sendReply(request, reply, replyStream, { encoder: aiSdkUi, heartbeatMs: deps.heartbeatMs });
    },
  );
};
