// The AI SDK UI message stream (AI-SDK.md §2.2): a reply's native events encoded as UI message chunks.

/** The UI message chunks this server sends (a subset of the SDK's `uiMessageChunkSchema`). */
export type UiChunk =
  | { type: 'start'; messageId: string; messageMetadata: Record<string, unknown> }
  | { type: 'start-step' }
  | { type: 'finish-step' }
  | { type: 'text-start'; id: string }
  | { type: 'text-delta'; id: string; delta: string }
  | { type: 'text-end'; id: string }
  | { type: `data-${string}`; id?: string; data: unknown; transient?: boolean }
  | { type: 'finish'; finishReason: 'stop' | 'length' | 'other'; messageMetadata: Record<string, unknown> }
  | { type: 'abort'; reason: string }
  | { type: 'error'; errorText: string };

/** A native event of API.md §1.2, keyed on its `type`. */
export interface NativeEvent {
  type: string;
  [field: string]: unknown;
}

/** One text part per reply: every delta goes to this id, so the part's text is the stored content. */
export const TEXT_PART_ID = 'text';

/** The headers of AI-SDK.md §2.1 (CORS and the request id are set by the app's hooks). */
export const UI_STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
  'x-vercel-ai-ui-message-stream': 'v1',
  connection: 'keep-alive',
} as const;

/** The stream's last frame; the client skips it, the protocol requires it. */
export const UI_DONE_FRAME = 'data: [DONE]\n\n';

/** Fields of `complete` that are not message metadata (they are in `start` or in `finishReason`). */
const NOT_METADATA = new Set(['type', 'finish_reason', 'session_id', 'message_id']);

function fieldsOf(event: NativeEvent): Record<string, unknown> {
  const { type: _type, ...fields } = event;
  return fields;
}

function finishReasonOf(native: unknown): 'stop' | 'length' | 'other' {
  return native === 'stop' || native === 'length' ? native : 'other';
}

/**
 * A stateful encoder for one stream: the text part is opened by the first chunk and closed at the
 * end only if it was opened (the client throws on a `text-end` for a part it never saw).
 */
export function createUiEncoder() {
  let textOpen = false;
  const closeText = (out: UiChunk[]) => {
    if (textOpen) out.push({ type: 'text-end', id: TEXT_PART_ID });
    textOpen = false;
  };

  return function encode(event: NativeEvent): UiChunk[] {
    switch (event.type) {
      case 'start':
        textOpen = false;
        return [
          {
            type: 'start',
            messageId: String(event.message_id),
            messageMetadata: { session_id: event.session_id, user_message_id: event.user_message_id },
          },
          { type: 'start-step' },
        ];
      case 'detecting':
      case 'thinking':
        return [
          { type: 'data-status', data: { stage: event.type, message: event.message }, transient: true },
        ];
      case 'intent':
        return [
          { type: 'data-intent', id: 'intent', data: { intent: event.intent, confidence: event.confidence } },
        ];
      case 'agent_selected':
        return [
          {
            type: 'data-agent',
            id: 'agent',
            data: { agent_id: event.agent_id, agent_name: event.agent_name },
          },
        ];
      case 'searching':
      case 'found':
        return [{ type: `data-${event.type}`, id: event.type, data: fieldsOf(event) }];
      case 'contract': {
        const data = (event.data ?? {}) as Record<string, unknown>;
        return [{ type: 'data-contract', id: String(data.id ?? 'contract'), data }];
      }
      case 'chunk': {
        const out: UiChunk[] = [];
        if (!textOpen) out.push({ type: 'text-start', id: TEXT_PART_ID });
        textOpen = true;
        out.push({ type: 'text-delta', id: TEXT_PART_ID, delta: String(event.content) });
        return out;
      }
      case 'complete': {
        const out: UiChunk[] = [];
        closeText(out);
        out.push({ type: 'finish-step' });
        if (event.finish_reason === 'stopped') {
          out.push({ type: 'abort', reason: 'stopped' });
        } else {
          const metadata: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(event)) if (!NOT_METADATA.has(k)) metadata[k] = v;
          out.push({
            type: 'finish',
            finishReason: finishReasonOf(event.finish_reason),
            messageMetadata: metadata,
          });
        }
        return out;
      }
      case 'error':
        return [{ type: 'error', errorText: String(event.message) }];
      default:
        // An event this protocol has no part for (a future native type) is not the client's concern.
        return [];
    }
  };
}

/** SSE framing: one `data:` line per chunk and a blank line (JSON.stringify never emits a raw newline). */
export function uiFrames(chunks: readonly UiChunk[]): string {
  let out = '';
  for (const c of chunks) out += `data: ${JSON.stringify(c)}\n\n`;
  return out;
}

/** Whether an event ends the reply (the stream then sends `[DONE]` and closes). */
export function endsReply(event: NativeEvent): boolean {
  return event.type === 'complete' || event.type === 'error';
}
