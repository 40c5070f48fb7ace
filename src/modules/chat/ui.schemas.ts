// The AI SDK request body (AI-SDK.md §2.1) and its mapping onto the native turn's body.
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { type ChatBody, SESSION_ID } from './chat.schemas.js';

// UIMessages as the stock client sends them; fields this server does not use pass through unread.
const uiPart = z.looseObject({ type: z.string() });
const uiMessage = z.looseObject({
  id: z.string().max(200).optional(),
  role: z.enum(['system', 'user', 'assistant']),
  parts: z.array(uiPart),
});
type UiMessage = z.infer<typeof uiMessage>;

export const uiBodySchema = z.looseObject({
  id: z
    .string({ error: 'id (the chat id) is required' })
    .regex(SESSION_ID, 'id must be 1–128 characters of [A-Za-z0-9_.:-]'),
  messages: z.array(uiMessage).optional(),
  message: uiMessage.optional(),
  trigger: z.literal('submit-message').optional(),
  agent_id: z.string().min(1).max(64).optional(),
});
export type UiBody = z.infer<typeof uiBodySchema>;

export const uiStreamParamsSchema = z.object({ chatId: z.string().max(512) });

/**
 * What the schema cannot say with the right status, checked before it runs: a body that is not a
 * JSON object is 400, and an unsupported trigger is 422 UNSUPPORTED_TRIGGER (whatever else is wrong).
 */
export function checkUiEnvelope(raw: unknown): void {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new AppError('BAD_REQUEST', 'The request body must be a JSON object.');
  }
  const trigger = (raw as { trigger?: unknown }).trigger;
  if (trigger !== undefined && trigger !== 'submit-message') {
    throw new AppError('UNSUPPORTED_TRIGGER', undefined, { trigger, supported: ['submit-message'] });
  }
}

const invalid = (path: string, message: string) =>
  new AppError('VALIDATION_ERROR', undefined, [{ path, message }]);

/** The turn's message: the text parts of the last user message, joined with a newline. */
function textOf(last: UiMessage): string {
  return last.parts
    .filter((p): p is typeof p & { text: string } => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text)
    .join('\n');
}

/**
 * The native body a valid AI SDK body stands for. Throws before anything is written: 413 for a
 * message over the limit, 422 otherwise. Earlier `messages` are never read: the stored history is
 * what the model sees, so a client cannot rewrite what it is told was said.
 */
export function toTurnBody(body: UiBody, maxChars: number): ChatBody {
  // `message` is the persistence guide's "send only the last message".
  const last = body.message ?? body.messages?.at(-1);
  if (!last) throw invalid('messages', 'messages (or message) must hold the new user message');
  if (last.role !== 'user') throw invalid('messages', 'the last message must have role "user"');
  const text = textOf(last);
  if (text.trim().length === 0) throw invalid('messages', 'the last message has no text');
  if (text.length > maxChars) {
    throw new AppError('PAYLOAD_TOO_LARGE', `The message must be at most ${maxChars} characters.`);
  }
  return { message: text, session_id: body.id, agent_id: body.agent_id };
}
