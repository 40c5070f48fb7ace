// The native SSE encoder alone: every frame is `frame(id, event)` byte for byte, chunks included
// (they take a path of their own that escapes only the content).
import { describe, expect, it } from 'vitest';
import { nativeSse } from '../src/modules/chat/encoders/native.js';
import { chunkEvent, completeEvent, type StreamEntry, startEvent } from '../src/modules/generation/events.js';
import { frame } from '../src/plugins/sse.js';

async function encodeAll(batches: StreamEntry[][]): Promise<string> {
  const framer = nativeSse.open();
  return batches.map((b) => framer.batch(b)).join('') + framer.end(false);
}

const entry = (seq: number, offset: number, event: StreamEntry['event']): StreamEntry => ({
  id: `${offset}-${seq}`,
  seq,
  offset,
  event,
});

describe('native SSE encoder', () => {
  it('writes each event as frame(id, event), for chunks of any text and agent', async () => {
    const texts = [
      'Olá, ',
      'aspas " e \\ barra ',
      'linha\nnova\t',
      'emoji 🇧🇷 ',
      '\u2028\u2029 ',
      'ctrl \u0001 ',
      '',
    ];
    const start = startEvent({
      sessionId: 's-1',
      messageId: 'm-1',
      userMessageId: 'u-1',
      startedAt: '2026-12-04T12:00:00.000Z',
    });
    const entries: StreamEntry[] = [entry(1, 0, start)];
    let offset = 0;
    for (const [i, t] of texts.entries()) {
      offset += t.length;
      entries.push(entry(i + 2, offset, chunkEvent(t, i % 2 ? 'niemeyer' : 'abaporu"x')));
    }
    // A chunk as a Redis log entry gives it back (parsed JSON).
    entries.push(
      entry(99, offset + 3, JSON.parse(JSON.stringify(chunkEvent('fim', 'zumbi'))) as StreamEntry['event']),
    );
    entries.push(
      entry(
        100,
        offset + 3,
        completeEvent({
          sessionId: 's-1',
          messageId: 'm-1',
          agentId: 'abaporu',
          agentName: 'Abaporu',
          finishReason: 'stop',
          suggestedActions: [],
          usage: { prompt_tokens: 1, completion_tokens: 2, estimated: true },
        }),
      ),
    );
    const expected = entries.map((e) => frame(e.id, e.event)).join('');
    expect(await encodeAll([entries.slice(0, 3), entries.slice(3)])).toBe(expected);
  });
});
