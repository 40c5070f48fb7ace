// The AI SDK request body (AI-SDK.md §2.1) and its mapping onto the native turn's body.
import { z } from 'zod';
import { AppError, zodIssues } from '../../errors.js';
import { type ChatBody, SESSION_ID } from './chat.schemas.js';

// UIMessages as the stock client sends them; fields this server does not use pass through unread.
const uiPart = z.looseObject({ type: z.string() });
const uiMessage = z.looseObject({
  id: z.string().max(200).optional(),
  role: z.enum(['system', 'user', 'assistant']),
  parts: z.array(uiPart),
});
type UiMessage = z.infer<typeof uiMessage>;

const uiBodySchema = z.looseObject({
  id: z
    .string({ error: 'id (the chat id) is required' })
    .regex(SESSION_ID, 'id must be 1–128 characters of [A-Za-z0-9_.:-]'),
  messages: z.array(uiMessage).optional(),
  message: uiMessage.optional(),
  agent_id: z.string().min(1).max(64).optional(),
});

export const uiStreamParamsSchema = z.object({ chatId: z.string().max(512) });

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
 * Validates the SDK's body and returns the native body it stands for. Every failure is thrown
 * before anything is written: 400 not an object, 413 message too long, 422 otherwise.
 */
export function parseUiBody(raw: unknown, maxChars: number): ChatBody {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new AppError('BAD_REQUEST', 'The request body must be a JSON object.');
  }
  const trigger = (raw as { trigger?: unknown }).trigger;
  if (trigger !== undefined && trigger !== 'submit-message') {
    throw new AppError('UNSUPPORTED_TRIGGER', undefined, { trigger, supported: ['submit-message'] });
  }
  const parsed = uiBodySchema.safeParse(raw);
  if (!parsed.success) throw new AppError('VALIDATION_ERROR', undefined, zodIssues(parsed.error));
  const body = parsed.data;
  // `message` is the persistence guide's "send only the last message"; the stored history is
  // what the model sees either way, so earlier `messages` are never read.
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
