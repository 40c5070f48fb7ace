// The AI SDK routes (AI-SDK.md §2): the native turn and resume, encoded as a UI message stream.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { openSse, type SseStream } from '../../plugins/sse.js';
import type { StreamEntry } from '../generation/events.js';
import type { ReplySource } from '../generation/replay.js';
import * as repo from './chat.repo.js';
import { type ChatRoutesDeps, callerOf, idempotencyKeyOf } from './chat.routes.js';
import { SESSION_ID } from './chat.schemas.js';
import { parseUiBody, uiStreamParamsSchema } from './ui.schemas.js';
import { createUiEncoder, endsReply, UI_DONE_FRAME, UI_STREAM_HEADERS, uiFrames } from './ui-stream.js';

export interface UiRoutesDeps extends ChatRoutesDeps {
  db: Parameters<typeof repo.activeReplyOf>[0];
}

const STREAM_FAILED = 'A transmissão foi interrompida. Tente novamente.';

/** Writes the reply's events as UI message chunks and ends with `[DONE]` (AI-SDK.md §2.1 framing). */
async function pumpUi(source: ReplySource, sse: SseStream, request: FastifyRequest) {
  const encode = createUiEncoder();
  let ended = false;
  // False when the socket wants draining (the caller then waits, like the native pump).
  const put = (entry: StreamEntry): boolean => {
    if (endsReply(entry.event)) ended = true;
    return sse.write(uiFrames(encode(entry.event)));
  };
  try {
    if ('generation' in source) {
      // A local log is read in place, every entry available on a wake-up at once (no promise per entry).
      const gen = source.generation;
      let i = source.from;
      while (!ended && !sse.closed) {
        while (i < gen.entries.length && !ended && !sse.closed) {
          if (!put(gen.entries[i++]!)) await sse.drained();
        }
        if (gen.ended && i >= gen.entries.length) break;
        if (!ended) await gen.changed();
      }
    } else {
      for await (const entry of source) {
        if (sse.closed) break;
        if (!put(entry)) await sse.drained();
        if (ended) break;
      }
    }
  } catch (err) {
    request.log.error({ err }, 'ui stream subscriber failed');
  }
  if (sse.closed) return;
  // A stream that stopped short of the reply's end still ends as the client expects it to.
  if (!ended) sse.write(uiFrames([{ type: 'error', errorText: STREAM_FAILED }]));
  sse.write(UI_DONE_FRAME);
  sse.end();
}

export async function uiRoutes(app: FastifyInstance, deps: UiRoutesDeps) {
  const limit = (cls: 'chat' | 'read'): Record<string, unknown> => {
    const settings = deps.rateLimit?.(cls);
    return settings ? { rateLimit: settings } : {};
  };
  const sseOptions = { heartbeatMs: deps.heartbeatMs, headers: UI_STREAM_HEADERS };

  // The body is validated by parseUiBody, not a route schema: its failures map to 400/413/422.
  app.post('/ui', { config: limit('chat') }, async (request, reply) => {
    const caller = callerOf(request);
    const body = parseUiBody(request.body, deps.maxMessageChars);
    const turn = await deps.turns.start(caller, body, idempotencyKeyOf(request));
    const gone = new AbortController();
    const source: ReplySource =
      turn.kind === 'new'
        ? { generation: turn.generation, from: 0 }
        : await deps.turns.entries(caller, turn.messageId, null, gone.signal, { checked: true });
    const sse = openSse(request, reply, sseOptions);
    sse.onClientClose(() => {
      gone.abort();
      // A disconnect (chat.stop() included) is not a stop: under `continue` the reply runs on.
      if (deps.onDisconnect === 'cancel' && turn.kind === 'new') turn.generation.abort('interrupted');
    });
    await pumpUi(source, sse, request);
  });

  // Resume: the running reply replayed from its start under its own id, then followed live.
  app.get<{ Params: { chatId: string } }>(
    '/ui/:chatId/stream',
    { schema: { params: uiStreamParamsSchema }, config: limit('read') },
    async (request, reply) => {
      const caller = callerOf(request);
      const { chatId } = request.params;
      // No session can have a malformed id, so there is nothing to resume (204, like a new chat).
      const messageId = SESSION_ID.test(chatId)
        ? await repo.activeReplyOf(deps.db, chatId, caller.userId)
        : undefined;
      if (!messageId) return reply.code(204).send();
      const gone = new AbortController();
      const source = await deps.turns.entries(caller, messageId, null, gone.signal);
      const sse = openSse(request, reply, sseOptions);
      sse.onClientClose(() => gone.abort());
      await pumpUi(source, sse, request);
    },
  );
}
