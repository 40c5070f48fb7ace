// The AI SDK mode on the wire (AI-SDK.md §2): headers, framing, chunk order, resume, bad bodies, idempotency.
import { uiMessageChunkSchema } from 'ai';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';

const SECRET = 'test-app-secret-0123456789abcdef';
const ORIGIN = 'http://localhost:3000';
let tdb: TestDb;
const redis = createTestRedis();
let fake: FakeModel;
const apps: FastifyInstance[] = [];
const closers: Array<() => Promise<unknown> | undefined> = [];
let base: string;

async function instance(env: Record<string, string> = {}, r = redis) {
  const app = await createTestApp({
    db: tdb.handle,
    redis: r,
    model: fakeProvider(fake),
    env: { JWT_SECRET: SECRET, CORS_ORIGINS: ORIGIN, RATE_LIMIT_CHAT_PER_MINUTE: '1000', ...env },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  apps.push(app);
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

const words = (n: number) => Array.from({ length: n }, (_, i) => `palavra${i}${i % 7 === 6 ? '\n' : ' '}`);
const userMessage = (text: string) => ({ id: 'm-user', role: 'user', parts: [{ type: 'text', text }] });

async function q<T>(query: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await tdb.handle.db.execute(query));
}
const rowOf = async (id: string) =>
  (
    await q<{ status: string; content: string }>(
      sql`select status, content from chat_messages where id = ${id}`,
    )
  )[0]!;
const replyOf = async (sessionId: string) =>
  (
    await q<{ id: string }>(
      sql`select id from chat_messages where session_id = ${sessionId} and role = 'assistant'`,
    )
  )[0];
const counts = async () =>
  (
    await q<{ s: number; m: number }>(
      sql`select (select count(*)::int from chat_sessions) as s, (select count(*)::int from chat_messages) as m`,
    )
  )[0]!;

interface Chunk {
  type: string;
  [k: string]: unknown;
}

/** Parses a whole UI message stream strictly: blocks of exactly one `data:` line, comments aside, `[DONE]` last. */
function parseUiStream(raw: string): { chunks: Chunk[]; comments: number } {
  expect(raw.endsWith('\n\n')).toBe(true);
  const blocks = raw.split('\n\n').slice(0, -1);
  const comments = blocks.filter((b) => b.split('\n').every((l) => l.startsWith(':'))).length;
  const data = blocks.filter((b) => !b.startsWith(':'));
  for (const b of data) {
    expect(b.split('\n'), JSON.stringify(b)).toHaveLength(1);
    expect(b.startsWith('data: ')).toBe(true);
  }
  expect(data.at(-1)).toBe('data: [DONE]');
  expect(data.filter((b) => b === 'data: [DONE]')).toHaveLength(1);
  return { chunks: data.slice(0, -1).map((b) => JSON.parse(b.slice(6)) as Chunk), comments };
}

/** The order rules of §2.2 and the SDK's own schema, for every chunk of a stream. */
async function checkOrder(chunks: Chunk[], end: 'finish' | 'abort' | 'error') {
  const schema = uiMessageChunkSchema();
  for (const c of chunks) expect((await schema.validate!(c)).success, JSON.stringify(c)).toBe(true);
  const types = chunks.map((c) => c.type);
  expect(types.slice(0, 2)).toEqual(['start', 'start-step']);
  expect(types.filter((t) => t === 'start')).toHaveLength(1);
  const firstDelta = types.indexOf('text-delta');
  if (firstDelta >= 0) expect(types.indexOf('text-start')).toBe(firstDelta - 1);
  expect(types.filter((t) => t === 'text-start').length).toBeLessThanOrEqual(1);
  expect(types.filter((t) => t === 'finish')).toHaveLength(end === 'finish' ? 1 : 0);
  expect(types.at(-1)).toBe(end);
  if (end !== 'error') expect(types.slice(-2, -1)).toEqual(['finish-step']);
  if (types.includes('data-agent'))
    expect(types.indexOf('data-agent')).toBeLessThan(Math.max(firstDelta, 0) || 1e9);
}
const textOf = (chunks: Chunk[]) =>
  chunks
    .filter((c) => c.type === 'text-delta')
    .map((c) => c.delta)
    .join('');

/** Reads a live stream until its text holds `needle`; returns what was read. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, needle: string): Promise<string> {
  const decoder = new TextDecoder();
  let seen = '';
  while (!seen.includes(needle)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${needle}`);
    seen += decoder.decode(value, { stream: true });
  }
  return seen;
}

function post(body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${base}/api/v1/chat/ui`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: ORIGIN, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function waitFor<T>(
  probe: () => Promise<T>,
  what: string,
  ms = 10_000,
): Promise<Exclude<T, false | null | undefined>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v as Exclude<T, false | null | undefined>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
  base = await instance({ SSE_HEARTBEAT_MS: '60' });
});
afterAll(async () => {
  for (const a of apps) await a.close();
  for (const close of closers) await close();
  await fake.close();
  await redis?.close();
  await tdb.drop();
});

describe('POST /api/v1/chat/ui on the wire', () => {
  it('sends the protocol headers, one data line per chunk in order, one finish last, then [DONE]', async () => {
    // A pause before the first token lets heartbeats through; the stream stays valid with them.
    fake.setScript({ tokens: ['Olá! ', 'Linha\n', 'dois.'], firstTokenDelayMs: 200 });
    const res = await post({ id: 'wire-1', messages: [userMessage('oi')], trigger: 'submit-message' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    expect(res.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const { chunks, comments } = parseUiStream(await res.text());
    expect(comments).toBeGreaterThan(0);
    await checkOrder(chunks, 'finish');
    const start = chunks[0]!;
    const row = await rowOf(start.messageId as string);
    expect(row.status).toBe('completed');
    expect(textOf(chunks)).toBe(row.content);
    expect(row.content).toBe('Olá! Linha\ndois.');
    expect(chunks.at(-1)).toMatchObject({ type: 'finish', finishReason: 'stop' });
  });

  it('resume replays the running reply from its start once, then follows it to the end', async () => {
    const tokens = words(120);
    fake.setScript({ tokens, delayMs: 15 });
    const live = await post({ id: 'wire-resume', messages: [userMessage('conte')] });
    const reader = live.body!.getReader();
    await readUntil(reader, '"text-delta"');
    await reader.cancel();
    const active = (await replyOf('wire-resume'))!;
    expect((await rowOf(active.id)).status).toBe('streaming');
    const resumed = await fetch(`${base}/api/v1/chat/ui/wire-resume/stream`);
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(resumed.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    const { chunks } = parseUiStream(await resumed.text());
    await checkOrder(chunks, 'finish');
    expect(chunks[0]!.messageId).toBe(active.id);
    expect(textOf(chunks)).toBe(tokens.join(''));
    expect((await rowOf(active.id)).content).toBe(tokens.join(''));
  });

  it('a stop ends the open stream with text-end, finish-step, abort and [DONE]', async () => {
    fake.setScript({ tokens: words(120), delayMs: 15 });
    const live = await post({ id: 'wire-stop', messages: [userMessage('fale')] });
    const reader = live.body!.getReader();
    let raw = await readUntil(reader, '"text-delta"');
    const active = (await replyOf('wire-stop'))!;
    const stop = await fetch(`${base}/api/v1/chat/messages/${active.id}/stop`, { method: 'POST' });
    expect(stop.status).toBe(200);
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      raw += decoder.decode(value, { stream: true });
    }
    const { chunks } = parseUiStream(raw);
    await checkOrder(chunks, 'abort');
    expect(chunks.slice(-3).map((c) => c.type)).toEqual(['text-end', 'finish-step', 'abort']);
    expect(chunks.at(-1)).toEqual({ type: 'abort', reason: 'stopped' });
    const row = await rowOf(active.id);
    expect(row.status).toBe('stopped');
    expect(textOf(chunks)).toBe(row.content);
    expect(row.content.length).toBeLessThan(words(120).join('').length);
  });

  it('a model failure ends with an error chunk and [DONE], and the row is failed', async () => {
    fake.setScript({ failTimes: 5, failStatus: 400 });
    const res = await post({ id: 'wire-fail', messages: [userMessage('oi')] });
    const { chunks } = parseUiStream(await res.text());
    await checkOrder(chunks, 'error');
    const row = await rowOf(chunks[0]!.messageId as string);
    expect(row.status).toBe('failed');
    expect(chunks.at(-1)).toEqual({ type: 'error', errorText: expect.stringContaining('Não foi possível') });
  });

  it('honours Idempotency-Key: a repeat attaches to the same turn; another body with the key is 409', async () => {
    fake.setScript({});
    const body = { id: 'wire-idem', messages: [userMessage('uma vez')] };
    const key = { 'idempotency-key': 'wire-idem-key-1' };
    const first = parseUiStream(await (await post(body, key)).text()).chunks;
    const before = await counts();
    const again = parseUiStream(await (await post(body, key)).text()).chunks;
    expect(again[0]!.messageId).toBe(first[0]!.messageId);
    expect(textOf(again)).toBe(textOf(first));
    expect(await counts()).toEqual(before);
    const other = await post({ ...body, messages: [userMessage('outra')] }, key);
    expect(other.status).toBe(409);
    expect(await counts()).toEqual(before);
  });

  it('is rate limited as a chat turn, before anything is written', async () => {
    // Its own Redis prefix: the limit counts only this test's requests.
    const own = createTestRedis();
    closers.push(() => own?.close());
    const limited = await instance({ RATE_LIMIT_CHAT_PER_MINUTE: '1' }, own);
    fake.setScript({});
    const send = () =>
      fetch(`${limited}/api/v1/chat/ui`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'wire-limited', messages: [userMessage('oi')] }),
      });
    expect((await send()).status).toBe(200);
    const before = await counts();
    const second = await send();
    expect(second.status).toBe(429);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    expect(await counts()).toEqual(before);
  });

  it('under GENERATION_ON_DISCONNECT=cancel a dropped stream stores its partial', async () => {
    const cancelBase = await instance({ GENERATION_ON_DISCONNECT: 'cancel' });
    fake.setScript({ tokens: words(80), delayMs: 15 });
    const res = await fetch(`${cancelBase}/api/v1/chat/ui`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'wire-cancel', messages: [userMessage('fale')] }),
    });
    const reader = res.body!.getReader();
    const active = await waitFor(() => replyOf('wire-cancel'), 'the reply row');
    await reader.read();
    await reader.cancel();
    const row = await waitFor(async () => {
      const r = await rowOf(active.id);
      return r.status !== 'streaming' && r;
    }, 'the stored partial');
    expect(row.status).toBe('interrupted');
    expect(words(80).join('').startsWith(row.content)).toBe(true);
  });
});

describe('bad bodies → 4xx with nothing written', () => {
  const text = (t: string) => [userMessage(t)];
  const cases: Array<[string, unknown, number, string, Record<string, string>?]> = [
    ['invalid JSON', '{"id": ', 400, 'INVALID_JSON'],
    ['a JSON array', '[]', 400, 'BAD_REQUEST'],
    ['a JSON string', '"oi"', 400, 'BAD_REQUEST'],
    ['JSON null', 'null', 400, 'BAD_REQUEST'],
    ['not JSON', 'id=x', 415, 'UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'text/plain' }],
    [
      'a message over CHAT_MAX_MESSAGE_CHARS',
      { id: 'bad-1', messages: text('a'.repeat(8001)) },
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'a body over the limit',
      { id: 'bad-1', messages: text('a'.repeat(2 * 1024 * 1024)) },
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    ['no id', { messages: text('oi') }, 422, 'VALIDATION_ERROR'],
    ['a bad id', { id: 'has space', messages: text('oi') }, 422, 'VALIDATION_ERROR'],
    ['no messages', { id: 'bad-1' }, 422, 'VALIDATION_ERROR'],
    ['empty messages', { id: 'bad-1', messages: [] }, 422, 'VALIDATION_ERROR'],
    ['messages not an array', { id: 'bad-1', messages: 'oi' }, 422, 'VALIDATION_ERROR'],
    [
      'the last message not from the user',
      {
        id: 'bad-1',
        messages: [userMessage('oi'), { id: 'a', role: 'assistant', parts: [{ type: 'text', text: 'olá' }] }],
      },
      422,
      'VALIDATION_ERROR',
    ],
    ['blank text', { id: 'bad-1', messages: text('  \n ') }, 422, 'VALIDATION_ERROR'],
    [
      'no text parts',
      {
        id: 'bad-1',
        message: { id: 'u', role: 'user', parts: [{ type: 'file', url: 'x', mediaType: 'image/png' }] },
      },
      422,
      'VALIDATION_ERROR',
    ],
    [
      'regenerate-message',
      { id: 'bad-1', messages: text('oi'), trigger: 'regenerate-message' },
      422,
      'UNSUPPORTED_TRIGGER',
    ],
    ['an unknown agent', { id: 'bad-1', messages: text('oi'), agent_id: 'pele' }, 422, 'UNKNOWN_AGENT'],
    [
      'an invalid token',
      { id: 'bad-1', messages: text('oi') },
      401,
      'INVALID_TOKEN',
      { authorization: 'Bearer x.y.z' },
    ],
  ];
  for (const [name, body, status, code, headers] of cases) {
    it(`${name} → ${status} ${code}`, async () => {
      const before = await counts();
      const res = await post(body, headers);
      expect(res.status).toBe(status);
      expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      const json = (await res.json()) as { error: { code: string }; request_id: string };
      expect(json.error.code).toBe(code);
      expect(json.request_id).toBeTruthy();
      expect(await counts()).toEqual(before);
    });
  }
});
