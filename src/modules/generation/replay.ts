// A reply rebuilt from its stored row (the live log is gone or elsewhere): the same events the live stream sent.
//
// The row is the truth of a finished reply. A producer's log (in memory, or mirrored to Redis)
// runs ahead of the row between checkpoints, and a producer that dies (kill -9) or whose final
// write fails leaves a log longer than anything the row will ever store. So:
//   - a replay that starts once the row is final, or once its producer is dead (no heartbeat for
//     `staleAfterMs`), is rebuilt from the row alone: its text is the stored content and it ends
//     with the row's one terminal event;
//   - a terminal event is only ever rebuilt from a row that is final: a replay that finds a dead
//     producer's row still `streaming` closes it first (`interrupted`, taking the producer's whole
//     Redis log when that extends the checkpoint, as the sweeper would) and replays what that
//     stored. Sending `interrupted` for a row still `streaming` would be a guess the row can later
//     contradict (the sweeper's recovered tail, or a producer that was only waiting for a
//     restarted database and then completes);
//   - a replay of a running reply follows the live log; if that log ends without a terminal event
//     (its producer died), it continues from the row, closed as above;
//   - only a follower that was already following when its producer died can have seen text the
//     row lacks (what the producer emitted after its last checkpoint); it ends with `error`
//     (GENERATION_INTERRUPTED, or PERSIST_FAILED), never `complete`, and any later replay is the row.
// `complete` is only ever sent after the final write committed, so a completed log equals its row.
import {
  type Cursor,
  chunkEvent,
  completeEvent,
  cursorId,
  errorEvent,
  type ReplyEvent,
  type StreamEntry,
  startEvent,
  type TerminalEvent,
} from './events.js';
import { type MessageRow, streamMetaOf } from './generation.repo.js';

/** A streaming row whose producer has not beaten for `staleMs` (it died, or lost its database). */
export function isStale(row: Pick<MessageRow, 'heartbeat_at'>, staleMs: number): boolean {
  const beat = row.heartbeat_at ? new Date(row.heartbeat_at).getTime() : 0;
  return Date.now() - beat > staleMs;
}

export function terminalEvent(row: MessageRow): TerminalEvent | null {
  const meta = streamMetaOf(row);
  if (row.status === 'completed' || row.status === 'stopped') {
    return completeEvent({
      sessionId: row.session_id,
      messageId: row.id,
      agentId: meta?.agent_echo_id ?? row.agent_id ?? 'abaporu',
      agentName: row.agent_name ?? 'Abaporu',
      finishReason: row.finish_reason ?? (row.status === 'stopped' ? 'stopped' : 'stop'),
      suggestedActions: meta?.suggested_actions ?? [],
      usage: row.usage ?? { prompt_tokens: 0, completion_tokens: 0, estimated: true },
      extra: meta?.complete_extra,
    });
  }
  if (row.status === 'failed' || row.status === 'interrupted') {
    const code = row.metadata?.error_code;
    return errorEvent(row.status, typeof code === 'string' ? code : undefined);
  }
  return null;
}

/**
 * Entries rebuilt from the stored message. The stored prelude keeps its live positions (seq 2…),
 * and the cursor's offset says how much content the client already has, so the rebuilt chunk
 * continues exactly where it stopped. A row still streaming (its producer is on another instance,
 * or the live log is gone) is polled until it ends or its producer stops heart-beating.
 */
export async function* storedEntries(
  first: MessageRow,
  after: Cursor | null,
  reload: () => Promise<MessageRow | undefined>,
  opts: {
    pollMs: number;
    signal: AbortSignal;
    staleMs: number;
    /** Closes the row of a dead producer; false when the database says it is not dead (yet). */
    closeDead(): Promise<boolean>;
  },
): AsyncIterable<StreamEntry> {
  let seq = after?.seq ?? 0;
  let offset = after?.offset ?? 0;
  const at = (event: ReplyEvent, s: number): StreamEntry => ({
    id: cursorId(offset, s),
    seq: s,
    offset,
    event,
  });
  if (!after) {
    yield at(
      startEvent({
        sessionId: first.session_id,
        messageId: first.id,
        userMessageId: first.reply_to,
        startedAt: first.created_at,
      }),
      ++seq,
    );
  }
  let preludeSent = offset > 0;
  let row: MessageRow | undefined = first;
  while (row) {
    const meta = streamMetaOf(row);
    if (meta && !preludeSent) {
      preludeSent = true;
      for (const [i, event] of meta.prelude.entries()) {
        if (i + 2 <= seq) continue;
        seq = i + 2;
        yield at(event, seq);
      }
    }
    if (row.content.length > offset) {
      const text = row.content.slice(offset);
      offset = row.content.length;
      yield at(chunkEvent(text, meta?.agent_echo_id ?? row.agent_id ?? 'abaporu'), ++seq);
    }
    const end = terminalEvent(row);
    if (end) {
      yield at(end, ++seq);
      return;
    }
    if (opts.signal.aborted) return;
    // A producer that looks dead (by this clock) is closed by the database's judgement, then replayed.
    if (!isStale(row, opts.staleMs) || !(await opts.closeDead())) {
      await new Promise((r) => setTimeout(r, opts.pollMs));
    }
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
