// The AI SDK encoder alone: native events → UI message chunks, checked against the SDK's own schema and reader.
import { readUIMessageStream, type UIMessage, type UIMessageChunk, uiMessageChunkSchema } from 'ai';
import { describe, expect, it } from 'vitest';
import { contractEventData } from '../src/modules/chat/contract-search.js';
import { aiSdkUi, createUiEncoder, type UiChunk, uiFrames } from '../src/modules/chat/encoders/ai-sdk.js';
import {
  completeEvent,
  errorEvent,
  type ReplyEvent,
  type StreamEntry,
} from '../src/modules/generation/events.js';
import { SAMPLE_CONTRACTS } from '../src/modules/investigations/data/sample-contracts.js';

const start = {
  type: 'start',
  session_id: 's-1',
  message_id: '6f1c1f5e-0000-4000-8000-000000000001',
  user_message_id: '6f1c1f5e-0000-4000-8000-000000000002',
  timestamp: '2026-12-04T12:00:00.000Z',
} satisfies ReplyEvent;
const usage = { prompt_tokens: 10, completion_tokens: 4, estimated: false };
const complete = (finishReason: string, extra?: Record<string, unknown>) =>
  completeEvent({
    sessionId: 's-1',
    messageId: start.message_id as string,
    agentId: 'niemeyer',
    agentName: 'Oscar Niemeyer',
    finishReason,
    suggestedActions: ['Ver mais'],
    usage,
    extra,
  }) as ReplyEvent;

function encodeAll(events: ReplyEvent[]): UiChunk[] {
  const encode = createUiEncoder();
  return events.flatMap((e) => encode(e));
}

async function validate(chunks: UiChunk[]) {
  const schema = uiMessageChunkSchema();
  for (const chunk of chunks) {
    const r = await schema.validate!(chunk);
    expect(r.success, JSON.stringify(chunk)).toBe(true);
  }
}

/** Builds the assistant message the way the client does (process-ui-message-stream), from our chunks. */
async function readMessage(chunks: UiChunk[]): Promise<UIMessage | undefined> {
  const stream = new ReadableStream<UIMessageChunk>({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk as UIMessageChunk);
      c.close();
    },
  });
  let last: UIMessage | undefined;
  for await (const m of readUIMessageStream({ stream, terminateOnError: true })) last = m;
  return last;
}

describe('createUiEncoder', () => {
  it('encodes a finished reply in the order of AI-SDK.md §2.2, and the SDK rebuilds the text', async () => {
    const events: ReplyEvent[] = [
      start,
      { type: 'detecting', message: 'Analisando sua mensagem...' },
      { type: 'intent', intent: 'greeting', confidence: 0.9 },
      { type: 'agent_selected', agent_id: 'niemeyer', agent_name: 'Oscar Niemeyer' },
      { type: 'thinking', message: 'Oscar Niemeyer está pensando...' },
      { type: 'chunk', content: 'Olá! ', agent_id: 'niemeyer' },
      { type: 'chunk', content: 'Tudo\nbem?', agent_id: 'niemeyer' },
      complete('stop'),
    ];
    const chunks = encodeAll(events);
    expect(chunks).toEqual([
      {
        type: 'start',
        messageId: start.message_id,
        messageMetadata: { session_id: 's-1', user_message_id: start.user_message_id },
      },
      { type: 'start-step' },
      {
        type: 'data-status',
        data: { stage: 'detecting', message: 'Analisando sua mensagem...' },
        transient: true,
      },
      { type: 'data-intent', id: 'intent', data: { intent: 'greeting', confidence: 0.9 } },
      { type: 'data-agent', id: 'agent', data: { agent_id: 'niemeyer', agent_name: 'Oscar Niemeyer' } },
      {
        type: 'data-status',
        data: { stage: 'thinking', message: 'Oscar Niemeyer está pensando...' },
        transient: true,
      },
      { type: 'text-start', id: 'text' },
      { type: 'text-delta', id: 'text', delta: 'Olá! ' },
      { type: 'text-delta', id: 'text', delta: 'Tudo\nbem?' },
      { type: 'text-end', id: 'text' },
      { type: 'finish-step' },
      {
        type: 'finish',
        finishReason: 'stop',
        messageMetadata: {
          agent_id: 'niemeyer',
          agent_name: 'Oscar Niemeyer',
          suggested_actions: ['Ver mais'],
          usage,
        },
      },
    ]);
    await validate(chunks);

    const message = await readMessage(chunks);
    expect(message?.id).toBe(start.message_id);
    const text = message?.parts.filter((p) => p.type === 'text').map((p) => (p as { text: string }).text);
    expect(text).toEqual(['Olá! Tudo\nbem?']);
    // Persistent data parts become message parts; transient status does not.
    expect(message?.parts.map((p) => p.type)).toEqual(['step-start', 'data-intent', 'data-agent', 'text']);
    expect(message?.metadata).toMatchObject({ session_id: 's-1', agent_id: 'niemeyer', usage });
  });

  it('encodes the contract-search path as data parts, one per contract, and its extras as metadata', async () => {
    const contracts = SAMPLE_CONTRACTS.slice(0, 2).map(contractEventData);
    const chunks = encodeAll([
      start,
      { type: 'searching', message: 'Buscando contratos na base de exemplo...', query: 'contratos' },
      { type: 'found', message: '2 contrato(s) encontrado(s)', count: 2, sample_data: true },
      ...contracts.map((data) => ({ type: 'contract' as const, data })),
      { type: 'chunk', content: 'Encontrei 2.', agent_id: 'zumbi' },
      complete('stop', { contracts, total_contracts: 2, download_available: true }),
    ]);
    await validate(chunks);
    expect(chunks.filter((c) => c.type === 'data-contract')).toEqual(
      contracts.map((data) => ({ type: 'data-contract', id: String(data.id), data })),
    );
    expect(chunks.find((c) => c.type === 'data-found')).toEqual({
      type: 'data-found',
      id: 'found',
      data: { message: '2 contrato(s) encontrado(s)', count: 2, sample_data: true },
    });
    const message = await readMessage(chunks);
    expect(message?.parts.filter((p) => p.type === 'data-contract')).toHaveLength(2);
    expect(message?.metadata).toMatchObject({ total_contracts: 2, download_available: true });
  });

  it('ends a stopped reply with abort, not finish', async () => {
    const chunks = encodeAll([
      start,
      { type: 'chunk', content: 'parcial ', agent_id: 'abaporu' },
      complete('stopped'),
    ]);
    expect(chunks.slice(-3)).toEqual([
      { type: 'text-end', id: 'text' },
      { type: 'finish-step' },
      { type: 'abort', reason: 'stopped' },
    ]);
    expect(chunks.some((c) => c.type === 'finish')).toBe(false);
    await validate(chunks);
    const message = await readMessage(chunks);
    expect(message?.parts.at(-1)).toMatchObject({ type: 'text', text: 'parcial ' });
  });

  it('does not close a text part it never opened (a reply stopped before its first chunk)', async () => {
    const chunks = encodeAll([start, complete('stopped')]);
    expect(chunks.map((c) => c.type)).toEqual(['start', 'start-step', 'finish-step', 'abort']);
    await validate(chunks);
    await expect(readMessage(chunks)).resolves.toBeDefined();
  });

  it('maps finish reasons onto the SDK enum', () => {
    const reasonOf = (native: string) =>
      (encodeAll([start, complete(native)]).at(-1) as { finishReason?: string }).finishReason;
    expect(reasonOf('stop')).toBe('stop');
    expect(reasonOf('length')).toBe('length');
    expect(reasonOf('content_filter')).toBe('other');
  });

  it('turns a failure into one error chunk that the SDK surfaces as an error', async () => {
    const failed = errorEvent('failed', 'MODEL_HTTP_ERROR');
    const chunks = encodeAll([start, { type: 'chunk', content: 'meia ', agent_id: 'abaporu' }, failed]);
    expect(chunks.at(-1)).toEqual({ type: 'error', errorText: failed.message });
    await validate(chunks);
    await expect(readMessage(chunks)).rejects.toThrow(String(failed.message));
  });

  it('frames each chunk as one data line and a blank line', () => {
    const chunks = encodeAll([start, { type: 'chunk', content: 'a\nb', agent_id: 'abaporu' }]);
    const framed = uiFrames(chunks);
    const lines = framed.split('\n');
    expect(lines.filter((l) => l.startsWith('data: '))).toHaveLength(chunks.length);
    expect(lines.filter((l) => l !== '' && !l.startsWith('data: '))).toEqual([]);
    expect(framed.endsWith('\n\n')).toBe(true);
    expect(lines.filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)))).toEqual(chunks);
  });

  it('as an Encoder: one piece of text per batch, [DONE] after the terminal event, nothing after it', async () => {
    const events: ReplyEvent[] = [
      start,
      { type: 'chunk', content: 'Olá ', agent_id: 'abaporu' },
      { type: 'chunk', content: 'mundo', agent_id: 'abaporu' },
      complete('stop'),
    ];
    const entries: StreamEntry[] = events.map((event, i) => ({
      id: `0-${i + 1}`,
      seq: i + 1,
      offset: 0,
      event,
    }));
    const framer = aiSdkUi.open();
    const pieces = [framer.batch(entries.slice(0, 1)), framer.batch(entries.slice(1)), framer.end(false)];
    expect(pieces[0]).toBe(uiFrames(encodeAll([start])));
    expect(pieces.at(-1)).toBe('data: [DONE]\n\n');
    expect(pieces.join('')).toBe(`${uiFrames(encodeAll(events))}data: [DONE]\n\n`);
    expect(aiSdkUi.headers).toEqual({ 'x-vercel-ai-ui-message-stream': 'v1' });
  });

  it('as an Encoder: a stream that fails midway ends with an error chunk and [DONE]', async () => {
    const framer = aiSdkUi.open();
    const text =
      framer.batch([{ id: '0-1', seq: 1, offset: 0, event: start } as StreamEntry]) + framer.end(true);
    const chunks = text
      .split('\n\n')
      .filter((b) => b.startsWith('data: {'))
      .map((b) => JSON.parse(b.slice(6)));
    expect(chunks.at(-1)).toEqual({
      type: 'error',
      errorText: 'A transmissão foi interrompida. Tente novamente.',
    });
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    await validate(chunks);
  });
});
