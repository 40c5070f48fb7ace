// Sources of stream entries for a subscriber: a local generation, or the stored message.
import type { MessageRow } from '../chat/chat.repo.js';
import {
  type Cursor,
  completeEvent,
  cursorId,
  errorEvent,
  type GenEvent,
  type StreamEntry,
} from './events.js';
import type { Generation } from './generation.js';

/** A generation on this instance, replayed from a position in its own log and then followed live. */
export interface LocalReplay {
  generation: Generation;
  /** Index of the first entry the subscriber has not seen. */
  from: number;
}

/** Where a subscriber picks up: local replays are written straight from the log; others stream. */
export type ReplySource = LocalReplay | AsyncIterable<StreamEntry>;

export function localReplay(generation: Generation, after: Cursor | null): LocalReplay {
  return { generation, from: after ? Math.min(after.seq, generation.entries.length) : 0 };
}

export function terminalEvent(row: MessageRow): GenEvent | null {
  if (row.status === 'completed' || row.status === 'stopped') {
    return completeEvent({
      sessionId: row.session_id,
      messageId: row.id,
      agentId: row.agent_id ?? 'abaporu',
      agentName: row.agent_name ?? 'Abaporu',
      finishReason: row.finish_reason ?? (row.status === 'stopped' ? 'stopped' : 'stop'),
      suggestedActions: [],
      usage: row.usage ?? { prompt_tokens: 0, completion_tokens: 0, estimated: true },
    });
  }
  if (row.status === 'failed' || row.status === 'interrupted') return errorEvent(row.status);
  return null;
}

/**
 * Entries rebuilt from the stored message when no live log exists. The cursor's offset says how
 * much content the client already has, so the rebuilt chunks continue exactly where it stopped.
 * `follow` polls a row that is still streaming (its producer is on another instance, or the
 * live log is gone) until it ends or stops heart-beating.
 */
export async function* storedEntries(
  first: MessageRow,
  after: Cursor | null,
  reload: () => Promise<MessageRow | undefined>,
  opts: { pollMs: number; signal: AbortSignal; staleMs: number },
): AsyncIterable<StreamEntry> {
  let seq = after?.seq ?? 0;
  let offset = after?.offset ?? 0;
  if (!after) {
    yield {
      id: cursorId(0, ++seq),
      seq,
      offset,
      event: {
        type: 'start',
        session_id: first.session_id,
        message_id: first.id,
        user_message_id: first.reply_to,
        timestamp: new Date(first.created_at).toISOString(),
      },
    };
  }
  let row: MessageRow | undefined = first;
  while (row) {
    if (row.content.length > offset) {
      const text = row.content.slice(offset);
      offset = row.content.length;
      yield {
        id: cursorId(offset, ++seq),
        seq,
        offset,
        event: { type: 'chunk', content: text, agent_id: row.agent_id ?? 'abaporu' },
      };
    }
    const end = terminalEvent(row);
    if (end) {
      yield { id: cursorId(offset, ++seq), seq, offset, event: end };
      return;
    }
    if (opts.signal.aborted) return;
    const beat = row.heartbeat_at ? new Date(row.heartbeat_at).getTime() : 0;
    if (Date.now() - beat > opts.staleMs) {
      const gone = { ...row, status: 'interrupted' } as MessageRow;
      yield { id: cursorId(offset, ++seq), seq, offset, event: terminalEvent(gone)! };
      return;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs));
    row = await reload();
  }
}

/** Follows `primary`; if it ends without a terminal event (its producer died), continues from `fallback`. */
export async function* withFallback(
  primary: AsyncIterable<StreamEntry>,
  after: Cursor | null,
  fallback: (after: Cursor | null) => AsyncIterable<StreamEntry>,
): AsyncIterable<StreamEntry> {
  let last = after;
  for await (const e of primary) {
    yield e;
    if (e.event.type === 'complete' || e.event.type === 'error') return;
    last = { offset: e.offset, seq: e.seq };
  }
  yield* fallback(last);
}
