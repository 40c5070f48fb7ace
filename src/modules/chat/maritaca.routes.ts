// Maritaca mode (API.md §2.1): the frontend's "Maritaca" toggle as a chat turn answered in JSON.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import type { TurnModel } from '../agents/offline.js';
import type { Replies } from '../generation/replies.js';
import { turnCallerOf } from './chat.routes.js';
import { type ChatBody, chatBodySchema, usageSchema } from './chat.schemas.js';
import type { TurnService } from './chat.turns.js';

export interface MaritacaRoutesDeps {
  turns: TurnService;
  replies: Replies;
  model: TurnModel;
  maxMessageChars: number;
  /** Models a client may name (LLM_ALLOWED_MODELS); any other name is ignored. */
  allowedModels: readonly string[];
}

/** The context key that carries the client's model choice into the turn (set only when allowed). */
export const REQUESTED_MODEL_KEY = 'maritacaModel';

/** The model a turn's context asks for, if the operator allows it. */
export function requestedModel(
  context: Record<string, unknown> | null | undefined,
  allowed: readonly string[],
) {
  const name = context?.[REQUESTED_MODEL_KEY];
  return typeof name === 'string' && allowed.includes(name) ? name : null;
}

/** The model as one turn sees it: the allowed model the client named, else the operator's. */
export function providerForTurn(
  model: TurnModel,
  context: Record<string, unknown> | null | undefined,
  allowed: readonly string[],
): TurnModel {
  const name = requestedModel(context, allowed);
  if (!name || model.kind === 'offline') return model;
  return Object.assign(Object.create(model) as typeof model, { modelFor: () => name });
}

export function maritacaBodySchema(maxChars: number) {
  const chat = chatBodySchema(maxChars).shape;
  return z
    .object({
      // The client keeps no history: the last message is the turn, the stored history the context.
      messages: z
        .array(z.object({ role: z.string().max(32).optional(), content: z.unknown() }))
        .min(1, 'messages must hold the new message')
        .max(200),
      model: z.string().max(100).optional(),
      temperature: z.number().min(0).max(2).optional(),
      max_tokens: z.number().int().min(1).max(100_000).optional(),
      stream: z.boolean().optional(),
      session_id: chat.session_id,
      agent_id: chat.agent_id,
      context: chat.context,
    })
    .superRefine((b, ctx) => {
      // An empty list is already named by `.min(1)`; there is no last message to check.
      if (b.messages.length === 0) return;
      const at = b.messages.length - 1;
      const r = chat.message.safeParse(b.messages[at]?.content);
      for (const issue of r.error?.issues ?? []) {
        ctx.addIssue({ code: 'custom', message: issue.message, path: ['messages', at, 'content'] });
      }
    });
}
type MaritacaBody = z.infer<ReturnType<typeof maritacaBodySchema>>;

/** The chat turn the request stands for; the model choice travels in the context, honoured only if allowed. */
export function toChatBody(b: MaritacaBody, allowed: readonly string[]): ChatBody {
  const asked = b.context?.[REQUESTED_MODEL_KEY] ?? b.model;
  const context =
    typeof asked === 'string' && allowed.includes(asked)
      ? { ...b.context, [REQUESTED_MODEL_KEY]: asked }
      : b.context;
  return {
    message: b.messages.at(-1)!.content as string,
    session_id: b.session_id,
    agent_id: b.agent_id,
    context,
  };
}

/** The answer: the reply under the three names the frontend's Maritaca client reads (API.md §2.1). */
export const maritacaAnswerSchema = z.object({
  content: z.string(),
  response: z.string(),
  message: z.string(),
  session_id: z.string(),
  message_id: z.string(),
  user_message_id: z.string().nullable(),
  model: z.string(),
  finish_reason: z.string(),
  usage: usageSchema.nullable(),
  metadata: z.record(z.string(), z.unknown()),
});

export const maritacaRoutes: FastifyPluginAsyncZod<MaritacaRoutesDeps> = async (app, deps) => {
  const schema = maritacaBodySchema(deps.maxMessageChars);
  app.post(
    '/direct/maritaca',
    {
      schema: { operationId: 'chatMaritaca', body: schema, response: { 200: maritacaAnswerSchema } },
      config: { rateLimitClass: 'chat' },
    },
    async (request, reply) => {
      const body = toChatBody(request.body, deps.allowedModels);
      // The chat rate limit is a step of turn admission (admission.ts), answered in reply headers.
      const caller = turnCallerOf(request, reply);
      // Same admission, persistence and dedupe as any turn: the frontend's identical retry attaches.
      const turn = await deps.turns.start(caller, body, undefined);
      // Waits for the end of the turn, wherever it runs.
      const row = await deps.replies.result(turn.messageId, caller, { verified: true });
      if (row.status === 'failed' || row.status === 'interrupted' || !row.content) {
        throw new AppError('GENERATION_FAILED');
      }
      const agentId = row.agent_id ?? 'abaporu';
      const model =
        deps.model.kind === 'offline'
          ? 'offline'
          : (requestedModel(body.context, deps.allowedModels) ?? deps.model.modelFor(agentId));
      const finishReason = row.finish_reason ?? 'stop';
      return {
        content: row.content,
        response: row.content,
        message: row.content,
        session_id: turn.sessionId,
        message_id: row.id,
        user_message_id: row.reply_to,
        model,
        finish_reason: finishReason,
        usage: row.usage,
        metadata: {
          ...row.metadata,
          model,
          agent_id: agentId,
          agent_name: row.agent_name,
          status: row.status,
          finish_reason: finishReason,
        },
      };
    },
  );
};
