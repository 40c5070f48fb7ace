// The AI SDK UI message stream (AI-SDK.md §2.2): a reply's typed events encoded as UI message chunks.
import { type ReplyEvent, streamFailedEvent } from '../../generation/events.js';
import type { Encoder } from './encoder.js';

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

/** One text part per reply: every delta goes to this id, so the part's text is the stored content. */
export const TEXT_PART_ID = 'text';

/** The stream's last frame; the client skips it, the protocol requires it. */
export const UI_DONE_FRAME = 'data: [DONE]\n\n';

function finishReasonOf(native: string): 'stop' | 'length' | 'other' {
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

  return function encode(event: ReplyEvent): UiChunk[] {
    switch (event.type) {
      case 'start':
        textOpen = false;
        return [
          {
            type: 'start',
            messageId: event.message_id,
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
      case 'found': {
        const { type, ...data } = event;
        return [{ type: `data-${type}`, id: type, data }];
      }
      case 'contract':
        return [{ type: 'data-contract', id: String(event.data.id), data: event.data }];
      case 'chunk': {
        const out: UiChunk[] = [];
        if (!textOpen) out.push({ type: 'text-start', id: TEXT_PART_ID });
        textOpen = true;
        out.push({ type: 'text-delta', id: TEXT_PART_ID, delta: event.content });
        return out;
      }
      case 'complete': {
        const out: UiChunk[] = [];
        closeText(out);
        out.push({ type: 'finish-step' });
        // `session_id` and `message_id` are in `start`; the finish reason has its own field.
        const { type: _t, finish_reason, session_id: _s, message_id: _m, ...metadata } = event;
        if (finish_reason === 'stopped') out.push({ type: 'abort', reason: 'stopped' });
        else
          out.push({
            type: 'finish',
            finishReason: finishReasonOf(finish_reason),
            messageMetadata: metadata,
          });
        return out;
      }
      case 'error':
        return [{ type: 'error', errorText: event.message }];
      default:
        // An event this protocol has no part for is not the client's concern.
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

/**
 * The AI SDK protocol as an encoder over the reply's typed entries: a burst of entries is one
 * piece of text (one socket write), and the stream always ends the protocol's way with `[DONE]`.
 */
export const aiSdkUi: Encoder = {
  headers: { 'x-vercel-ai-ui-message-stream': 'v1' },
  open() {
    const encode = createUiEncoder();
    let ended = false;
    return {
      batch(entries) {
        let text = '';
        for (const entry of entries) {
          // Nothing follows the terminal event (the stream ends with it).
          if (ended) break;
          text += uiFrames(encode(entry.event));
          if (entry.event.type === 'complete' || entry.event.type === 'error') ended = true;
        }
        return text;
      },
      // A stream that stopped short of the reply's end (reading it failed) still ends as the client expects.
      end: () => (ended ? '' : uiFrames(encode(streamFailedEvent()))) + UI_DONE_FRAME,
    };
  },
};
