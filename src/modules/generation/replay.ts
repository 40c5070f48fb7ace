// Sources of stream entries for a subscriber: a local generation, or the stored message.
import type { MessageRow } from '../chat/chat.repo.js';
import { type Cursor, cursorId, type GenEvent, type StreamEntry } from './events.js';
import type { Generation } from './generation.js';

/** Entries of a generation on this instance after the cursor, then live until its end. */
export async function* localEntries(gen: Generation, after: Cursor | null): AsyncIterable<StreamEntry> {
  let i = after ? Math.min(after.seq, gen.entries.length) : 0;
  for (;;) {
    while (i < gen.entries.length) yield gen.entries[i++]!;
    if (gen.ended) return;
    await gen.changed();
  }
}

export function terminalEvent(row: MessageRow): GenEvent | null {
  if (row.status === 'completed' || row.status === 'stopped') {
    return {
      type: 'complete',
      session_id: row.session_id,
      message_id: row.id,
      agent_id: row.agent_id ?? 'abaporu',
      agent_name: row.agent_name ?? 'Abaporu',
      finish_reason: row.finish_reason ?? (row.status === 'stopped' ? 'stopped' : 'stop'),
      suggested_actions: [],
      usage: row.usage ?? { prompt_tokens: 0, completion_tokens: 0, estimated: true },
    };
  }
  if (row.status === 'failed' || row.status === 'interrupted') {
    return {
      type: 'error',
      message:
        row.status === 'interrupted'
          ? 'A resposta foi interrompida. Tente novamente.'
          : 'Não foi possível concluir a resposta. Tente novamente.',
      code: row.status === 'interrupted' ? 'GENERATION_INTERRUPTED' : 'GENERATION_FAILED',
      fallback_endpoint: '/api/v1/chat/message',
    };
  }
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
