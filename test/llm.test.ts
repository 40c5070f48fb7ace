import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  createServer as createH2cServer,
  createSecureServer,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { personas } from '../src/modules/agents/personas.js';
import { createOpenAIProvider, type OpenAIProviderOptions } from '../src/modules/llm/openai.js';
import { buildPrompt } from '../src/modules/llm/prompt.js';
import {
  type ChatTurnMessage,
  estimateTokens,
  ModelError,
  type ModelEvent,
  type ModelProvider,
} from '../src/modules/llm/provider.js';
import { MAX_SSE_EVENT_BYTES, SseDecoder, SseTooLarge } from '../src/modules/llm/sse-decoder.js';
import { DEFAULT_TOKENS, FAKE_PROMPT_TOKENS, type FakeModel, startFakeModel } from './support/fake-model.js';

const warnings: unknown[] = [];
const log = { warn: (o: unknown) => void warnings.push(o), debug: () => {} } as OpenAIProviderOptions['log'];

let fake: FakeModel;
beforeAll(async () => {
  fake = await startFakeModel();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.setScript({});
  fake.requests.length = 0;
  warnings.length = 0;
});

function provider(over: Partial<OpenAIProviderOptions> = {}): ModelProvider {
  return createOpenAIProvider({
    baseUrl: fake.url,
    apiKey: 'sk-test-123',
    model: 'base-model',
    agentModels: { zumbi: 'zumbi-model' },
    connectTimeoutMs: 5000,
    idleTimeoutMs: 5000,
    log,
    ...over,
  });
}

const messages: ChatTurnMessage[] = [
  { role: 'system', content: 'Você é um assistente de testes.' },
  { role: 'user', content: 'Quanto custou a merenda escolar em 2024?' },
];

async function run(p: ModelProvider, signal = new AbortController().signal, model = 'base-model') {
  const tokens: string[] = [];
  let done: Extract<ModelEvent, { type: 'done' }> | undefined;
  let error: unknown;
  try {
    for await (const ev of p.stream({ model, messages, signal })) {
      if (ev.type === 'token') tokens.push(ev.text);
      else done = ev;
    }
  } catch (err) {
    error = err;
  }
  return { tokens, done, error };
}

describe('SSE decoding', () => {
  it('decodes the same events however the bytes are split (CRLF, comments, multi-byte characters)', () => {
    const wire =
      ': OPENROUTER PROCESSING\r\n\r\n' +
      'data: {"choices":[{"delta":{"content":"ação é"}}]}\r\n\r\n' +
      'event: message\ndata:{"choices":[{"delta":{"content":"😀 ok"}}]}\n\n' +
      'data: {"a":1}\r\r' +
      'data: [DONE]\n\n';
    const bytes = Buffer.from(wire);
    const expected = [
      '{"choices":[{"delta":{"content":"ação é"}}]}',
      '{"choices":[{"delta":{"content":"😀 ok"}}]}',
      '{"a":1}',
      '[DONE]',
    ];
    for (let cut = 0; cut <= bytes.length; cut++) {
      for (const second of [cut, Math.min(bytes.length, cut + 1), Math.min(bytes.length, cut + 7)]) {
        const d = new SseDecoder();
        const out = [
          ...d.push(bytes.subarray(0, cut)),
          ...d.push(bytes.subarray(cut, second)),
          ...d.push(bytes.subarray(second)),
          ...d.end(),
        ];
        expect(out, `split at ${cut}/${second}`).toEqual(expected);
      }
    }
  });

  it('delivers a final event that lacks its blank line at end of stream', () => {
    const d = new SseDecoder();
    expect(d.push(Buffer.from('data: {"x":1}'))).toEqual([]);
    expect(d.end()).toEqual(['{"x":1}']);
  });

  it('refuses a line or an event past its bound instead of holding it', () => {
    const line = new SseDecoder(64);
    expect(line.push(Buffer.from(`data: ${'a'.repeat(50)}`))).toEqual([]);
    expect(() => line.push(Buffer.from('b'.repeat(20)))).toThrow(SseTooLarge);
    // Many short data lines of one event, never a blank line to end it.
    const event = new SseDecoder(64);
    expect(event.push(Buffer.from('data: 0123456789\n'.repeat(5)))).toEqual([]);
    expect(() => event.push(Buffer.from('data: 0123456789\n'.repeat(2)))).toThrow(SseTooLarge);
    // At the bound exactly, an event still passes.
    const fits = new SseDecoder(64);
    expect(fits.push(Buffer.from(`data: ${'c'.repeat(64)}\n\n`))).toEqual(['c'.repeat(64)]);
  });
});

/** A provider of the test's own over HTTP/1.1: `handle` answers each request. */
async function h1Provider(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A broken provider over HTTP/1.1: `head`, then `chunk` again and again, the body never ending. */
async function endlessProvider(status: number, contentType: string, head: string, chunk: string) {
  let closed = 0;
  const h1 = await h1Provider((_req, res) => {
    res.writeHead(status, { 'content-type': contentType });
    res.write(head);
    const pump = setInterval(() => res.write(chunk), 1);
    res.on('close', () => {
      clearInterval(pump);
      closed++;
    });
  });
  return { ...h1, closed: () => closed };
}

/** A whole one-token answer ("ok"), as a provider streams it. */
function answerOk(stream: ServerHttp2Stream): void {
  stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
  stream.end('data: {"choices":[{"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n');
}

/** A provider over HTTP/2 without TLS (h2c): `answer` gets each stream once its request body ended. */
async function h2cProvider(answer: (stream: ServerHttp2Stream, body: string) => void) {
  const sessions: ServerHttp2Session[] = [];
  const server = createH2cServer();
  server.on('session', (session) => sessions.push(session));
  server.on('stream', (stream) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => answer(stream, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    sessions,
    async close() {
      // The provider keeps its connection alive for the next reply: closed here, or close() waits.
      for (const session of sessions) session.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('OpenAI-compatible provider', () => {
  it('forwards each token as it arrives, before the server has sent the last one', async () => {
    const tokens = ['Um ', 'dois ', 'três ', 'quatro ', 'cinco.'];
    // 4 s between the first and the last token: a loaded machine cannot blur "before the last one".
    fake.setScript({ tokens, delayMs: 1000 });
    const it = provider()
      .stream({ model: 'base-model', messages, signal: new AbortController().signal })
      [Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toEqual({ type: 'token', text: 'Um ' });
    expect(fake.requests[0]!.tokensSent).toBeLessThan(tokens.length);
    expect(fake.requests[0]!.finished).toBe(false);
    const rest: ModelEvent[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest.filter((e) => e.type === 'token').map((e) => (e as { text: string }).text)).toEqual(
      tokens.slice(1),
    );
    expect(rest.at(-1)).toMatchObject({ type: 'done', finishReason: 'stop' });
  });

  it('sends the OpenAI request shape with the bearer key', async () => {
    const p = provider({ maxTokens: 321 });
    await run(p);
    const req = fake.requests[0]!;
    expect(req.headers.authorization).toBe('Bearer sk-test-123');
    expect(req.body).toMatchObject({
      model: 'base-model',
      messages,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 321,
    });
  });

  it('uses the per-agent model override', async () => {
    const p = provider();
    expect(p.modelFor('zumbi')).toBe('zumbi-model');
    expect(p.modelFor('anita')).toBe('base-model');
    await run(p, undefined, p.modelFor('zumbi'));
    expect(fake.requests[0]!.body.model).toBe('zumbi-model');
    expect(p.describe).not.toContain('sk-test');
  });

  it('reports usage from the stream, and estimates it when the provider sends none', async () => {
    const reported = await run(provider());
    expect(reported.tokens).toEqual(DEFAULT_TOKENS);
    expect(reported.done?.usage).toEqual({
      prompt_tokens: FAKE_PROMPT_TOKENS,
      completion_tokens: DEFAULT_TOKENS.length,
      estimated: false,
    });

    fake.setScript({ usage: false, finishReason: 'length' });
    const estimated = await run(provider());
    expect(estimated.done?.finishReason).toBe('length');
    expect(estimated.done?.usage).toEqual({
      prompt_tokens: messages.reduce((n, m) => n + estimateTokens(m.content), 0),
      completion_tokens: estimateTokens(DEFAULT_TOKENS.join('')),
      estimated: true,
    });
  });

  it('copes with provider framing quirks: CRLF, comments, fragmented events, usage on the last choice, no [DONE]', async () => {
    const tokens = ['Licitação ', 'é ', 'ótima 😀 ', 'coisa.'];
    fake.setScript({
      tokens,
      crlf: true,
      comments: true,
      fragment: true,
      finishInLastToken: true,
      noDone: true,
    });
    const r = await run(provider());
    expect(r.error).toBeUndefined();
    expect(r.tokens.join('')).toBe(tokens.join(''));
    expect(r.done?.usage).toEqual({
      prompt_tokens: FAKE_PROMPT_TOKENS,
      completion_tokens: 4,
      estimated: false,
    });
  });

  it('retries before the first token on 5xx and 429, then succeeds', async () => {
    fake.setScript({ failTimes: 2, failStatus: 503 });
    const r = await run(provider());
    expect(r.error).toBeUndefined();
    expect(r.tokens).toEqual(DEFAULT_TOKENS);
    expect(fake.requests).toHaveLength(3);
    expect(warnings).toHaveLength(2);

    fake.requests.length = 0;
    fake.setScript({ failTimes: 1, failStatus: 429 });
    expect((await run(provider())).tokens).toEqual(DEFAULT_TOKENS);
    expect(fake.requests).toHaveLength(2);
  });

  it('gives up after maxRetries with the upstream status', async () => {
    fake.setScript({ failTimes: 5, failStatus: 502 });
    const r = await run(provider({ maxRetries: 2 }));
    expect(r.error).toBeInstanceOf(ModelError);
    expect(r.error).toMatchObject({ code: 'MODEL_HTTP_ERROR', status: 502 });
    expect(fake.requests).toHaveLength(3);
  });

  it('does not retry a 400', async () => {
    fake.setScript({ failTimes: 1, failStatus: 400 });
    const r = await run(provider());
    expect(r.error).toMatchObject({ code: 'MODEL_HTTP_ERROR', status: 400, retryable: false });
    expect((r.error as Error).message).toContain('scripted failure 400');
    expect(fake.requests).toHaveLength(1);
  });

  it('does not retry after the first token: the partial tokens arrive, then it throws', async () => {
    fake.setScript({ dropAfter: 3 });
    const r = await run(provider());
    expect(r.tokens).toEqual(DEFAULT_TOKENS.slice(0, 3));
    expect(r.error).toBeInstanceOf(ModelError);
    expect(r.error).toMatchObject({ code: 'MODEL_STREAM_ERROR', retryable: false });
    expect(fake.requests).toHaveLength(1);
  });

  it('times out waiting for response headers, and closes the socket', async () => {
    fake.setScript({ headersDelayMs: 3000 });
    const r = await run(provider({ connectTimeoutMs: 200, maxRetries: 0 }));
    expect(r.error).toMatchObject({ code: 'MODEL_TIMEOUT' });
    await fake.waitForAbort(0);
  });

  it('times out when the stream goes idle, before or after the first token', async () => {
    fake.setScript({ hang: true });
    const hung = await run(provider({ idleTimeoutMs: 300 }));
    expect(hung.error).toMatchObject({ code: 'MODEL_TIMEOUT' });
    expect(fake.requests).toHaveLength(1);
    await fake.waitForAbort(0);

    fake.setScript({ tokens: ['a ', 'b ', 'c'], delayMs: 3000 });
    const stalled = await run(provider({ idleTimeoutMs: 300 }));
    expect(stalled.tokens).toEqual(['a ']);
    expect(stalled.error).toMatchObject({ code: 'MODEL_TIMEOUT', retryable: false });
    await fake.waitForAbort(1);
  });

  it('aborts the upstream request when the signal fires mid-stream', async () => {
    // Tokens far apart: the stream would take 6 s to end on its own.
    fake.setScript({ tokens: ['a ', 'b ', 'c ', 'd'], delayMs: 2000 });
    const ctrl = new AbortController();
    const tokens: string[] = [];
    await expect(
      (async () => {
        for await (const ev of provider().stream({ model: 'm', messages, signal: ctrl.signal })) {
          if (ev.type === 'token') {
            tokens.push(ev.text);
            ctrl.abort();
          }
        }
      })(),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(tokens).toEqual(['a ']);
    // The upstream request was closed by the client, before the server wrote its remaining tokens.
    await fake.waitForAbort(0, 10_000);
    expect(fake.requests[0]!.finished).toBe(false);
    expect(fake.requests[0]!.tokensSent).toBeLessThan(4);
  });

  it('aborts while waiting for headers and while backing off between retries', async () => {
    fake.setScript({ headersDelayMs: 5000 });
    const ctrl = new AbortController();
    const pending = run(provider(), ctrl.signal);
    await waitFor(() => fake.requests.length === 1);
    ctrl.abort();
    expect((await pending).error).toMatchObject({ name: 'AbortError' });
    await fake.waitForAbort(0);

    fake.requests.length = 0;
    fake.setScript({ failTimes: 10, failStatus: 500 });
    const ctrl2 = new AbortController();
    const retrying = run(provider({ maxRetries: 10 }), ctrl2.signal);
    await waitFor(() => fake.requests.length === 1);
    ctrl2.abort();
    expect((await retrying).error).toMatchObject({ name: 'AbortError' });
    // The first backoff is at most 300 ms (250 ms ± 20%). Timers fire in deadline order, so once a
    // later one has fired, a retry that survived the abort would already have left; its request
    // then reaches the fake within a round trip, which the sentinel request below also makes.
    await new Promise((r) => setTimeout(r, 3 * 300));
    fake.setScript({ tokens: ['ok'] });
    expect((await run(provider())).tokens).toEqual(['ok']);
    expect(fake.requests).toHaveLength(2);
  });

  it('closes the upstream request when the consumer stops iterating', async () => {
    fake.setScript({ tokens: ['a ', 'b ', 'c'], delayMs: 1000 });
    for await (const ev of provider().stream({
      model: 'm',
      messages,
      signal: new AbortController().signal,
    })) {
      if (ev.type === 'token') break;
    }
    await fake.waitForAbort(0);
  });

  it('does not count a slow consumer against the idle timeout', async () => {
    // Tokens every 100 ms (far inside the 3 s idle limit, even on a loaded machine); the consumer
    // sits on the first for longer than the limit: the pause IS the scenario, not a wait for a state.
    fake.setScript({ tokens: ['a ', 'b ', 'c ', 'd'], delayMs: 100 });
    const tokens: string[] = [];
    const signal = new AbortController().signal;
    const idleTimeoutMs = 3000;
    for await (const ev of provider({ idleTimeoutMs }).stream({ model: 'm', messages, signal })) {
      if (ev.type !== 'token') continue;
      tokens.push(ev.text);
      if (tokens.length === 1) await new Promise((r) => setTimeout(r, idleTimeoutMs + 500));
    }
    expect(tokens).toEqual(['a ', 'b ', 'c ', 'd']);
  });

  it('treats an error event inside the stream as a model failure, retried before the first token', async () => {
    let hits = 0;
    const h1 = await h1Provider((_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {"error":{"message":"upstream overloaded","code":502}}\n\n');
    });
    try {
      const r = await run(provider({ baseUrl: h1.url, maxRetries: 1 }));
      expect(r.error).toMatchObject({ code: 'MODEL_STREAM_ERROR' });
      expect((r.error as Error).message).toContain('upstream overloaded');
      expect(hits).toBe(2);
    } finally {
      await h1.close();
    }
  });
  it('streams over HTTP/2 (h2c), replies sharing one connection', async () => {
    const bodies: string[] = [];
    const h2 = await h2cProvider((stream, body) => {
      bodies.push(body);
      stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
      stream.write('data: {"choices":[{"delta":{"content":"olá "}}]}\n\n');
      stream.end(
        'data: {"choices":[{"delta":{"content":"mundo"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
      );
    });
    try {
      const p = provider({ baseUrl: h2.url, http2: true });
      const first = await run(p);
      expect(first.tokens).toEqual(['olá ', 'mundo']);
      // Once a connection is up, concurrent replies are streams on it, each with its whole body.
      const rest = await Promise.all(Array.from({ length: 20 }, () => run(p)));
      expect(rest.map((r) => r.tokens.join(''))).toEqual(Array(20).fill('olá mundo'));
      expect(rest.every((r) => r.done?.finishReason === 'stop')).toBe(true);
      expect(h2.sessions).toHaveLength(1);
      expect(bodies.map((b) => (JSON.parse(b) as { messages: unknown }).messages)).toEqual(
        Array(21).fill(messages),
      );
    } finally {
      await h2.close();
    }
  });
  it('opens one HTTP/2 connection for a burst of replies that start before any connection is up', async () => {
    const h2 = await h2cProvider(answerOk);
    try {
      const p = provider({ baseUrl: h2.url, http2: true });
      const replies = await Promise.all(Array.from({ length: 50 }, () => run(p)));
      expect(replies.map((r) => r.tokens.join(''))).toEqual(Array(50).fill('ok'));
      expect(h2.sessions).toHaveLength(1);
    } finally {
      await h2.close();
    }
  });
  it('a burst past one connection’s 100 streams opens only the connections it needs', async () => {
    // After one reply warms the connection, the model holds every reply of the burst open until
    // all of them arrived, as a slow model does: the burst needs 3 connections of 100 streams.
    const burst = 250;
    const held: ServerHttp2Stream[] = [];
    let warm = false;
    const h2 = await h2cProvider((stream) => {
      if (!warm) {
        warm = true;
        return answerOk(stream);
      }
      held.push(stream);
      if (held.length === burst) for (const s of held) answerOk(s);
    });
    try {
      const p = provider({ baseUrl: h2.url, http2: true });
      expect((await run(p)).tokens).toEqual(['ok']);
      const replies = await Promise.all(Array.from({ length: burst }, () => run(p)));
      expect(replies.map((r) => r.tokens.join(''))).toEqual(Array(burst).fill('ok'));
      expect(h2.sessions).toHaveLength(3);
    } finally {
      await h2.close();
    }
  });
  it('a connection the provider closes (GOAWAY or reset) is replaced by the next reply', async () => {
    const h2 = await h2cProvider(answerOk);
    const closed = (session: ServerHttp2Session) =>
      session.closed ? Promise.resolve() : new Promise((r) => session.once('close', r));
    try {
      const p = provider({ baseUrl: h2.url, http2: true });
      expect((await run(p)).tokens).toEqual(['ok']);
      h2.sessions[0]!.close(); // GOAWAY: no new streams on it
      await closed(h2.sessions[0]!);
      const second = await Promise.all(Array.from({ length: 5 }, () => run(p)));
      expect(second.map((r) => r.tokens.join(''))).toEqual(Array(5).fill('ok'));
      // Replies sent before the client saw the GOAWAY may be retried: at most two new connections
      // (undici reconnecting the old client for them, and the pool's new one), never one per reply.
      expect(h2.sessions.length).toBeGreaterThanOrEqual(2);
      expect(h2.sessions.length).toBeLessThanOrEqual(3);
      const afterGoaway = h2.sessions.length;
      for (const session of h2.sessions) session.destroy(); // the connections drop
      await Promise.all(h2.sessions.map(closed));
      const third = await Promise.all(Array.from({ length: 5 }, () => run(p)));
      expect(third.map((r) => r.tokens.join(''))).toEqual(Array(5).fill('ok'));
      expect(h2.sessions.length - afterGoaway).toBeGreaterThanOrEqual(1);
      expect(h2.sessions.length - afterGoaway).toBeLessThanOrEqual(2);
    } finally {
      await h2.close();
    }
  });
  it('over https, ALPN picks HTTP/2 and a burst of 150 replies shares 2 connections', async () => {
    // A certificate for 127.0.0.1, made here; the client trusts it through NODE_EXTRA_CA_CERTS,
    // which Node reads only at start: the replies run in a process of their own.
    const dir = mkdtempSync(join(tmpdir(), 'h2-tls-'));
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { encoding: 'utf8' },
    );
    expect(made.status, made.stderr).toBe(0);
    const sessions: ServerHttp2Session[] = [];
    const protocols: string[] = [];
    const held: ServerHttp2Stream[] = [];
    const server = createSecureServer({
      key: readFileSync(join(dir, 'key.pem')),
      cert: readFileSync(join(dir, 'cert.pem')),
      allowHTTP1: false,
    });
    server.on('session', (session) => {
      sessions.push(session);
      protocols.push(session.alpnProtocol ?? '');
    });
    server.on('stream', (stream) => {
      stream.resume();
      stream.on('end', () => {
        // Held until the whole burst arrived: it needs two connections of 100 streams.
        held.push(stream);
        if (held.length < 150) return;
        for (const s of held) answerOk(s);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/h2-tls-burst.ts', url, '150'], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c;
      });
      child.stderr.on('data', (c: Buffer) => {
        err += c;
      });
      const code = await new Promise((r) => child.once('exit', r));
      expect(code, err).toBe(0);
      expect(JSON.parse(out)).toEqual(Array(150).fill('ok'));
      expect(protocols).toEqual(['h2', 'h2']);
    } finally {
      for (const session of sessions) session.destroy();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
  it('does not hold a burst of HTTP/2 replies when the provider refuses the connection', async () => {
    const p = provider({ baseUrl: 'http://127.0.0.1:1/v1', http2: true, maxRetries: 1 });
    const replies = await Promise.all(Array.from({ length: 5 }, () => run(p)));
    for (const r of replies) expect(r.error).toMatchObject({ code: 'MODEL_HTTP_ERROR' });
  });

  it('stops one HTTP/2 reply (before and during its stream) without failing the others on its connection', async () => {
    const h2 = await h2cProvider((stream) => {
      // The reply stopped before its stream started is reset by the client by now.
      if (stream.destroyed || stream.closed) return;
      try {
        stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
      } catch {
        return; // reset in between (ERR_HTTP2_INVALID_STREAM)
      }
      let sent = 0;
      const pump = setInterval(() => {
        if (++sent <= 10) stream.write(`data: {"choices":[{"delta":{"content":"t${sent} "}}]}\n\n`);
        else {
          clearInterval(pump);
          stream.end('data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n');
        }
      }, 20);
      stream.on('close', () => clearInterval(pump));
    });
    try {
      const p = provider({ baseUrl: h2.url, http2: true });
      expect((await run(p)).tokens).toHaveLength(10); // the connection is up
      const before = new AbortController();
      const during = new AbortController();
      const early = run(p, before.signal);
      // The other one is stopped once its stream is under way: at its second token.
      const mid = (async () => {
        const tokens: string[] = [];
        let error: unknown;
        try {
          for await (const ev of p.stream({ model: 'base-model', messages, signal: during.signal })) {
            if (ev.type !== 'token') continue;
            tokens.push(ev.text);
            if (tokens.length === 2) during.abort();
          }
        } catch (err) {
          error = err;
        }
        return { tokens, error };
      })();
      const others = Array.from({ length: 4 }, () => run(p));
      before.abort(); // its request was just sent: no token yet
      expect(await early).toMatchObject({ tokens: [], error: { name: 'AbortError' } });
      expect(await mid).toMatchObject({ tokens: ['t1 ', 't2 '], error: { name: 'AbortError' } });
      const rest = await Promise.all(others);
      expect(rest.map((r) => r.tokens.length)).toEqual([10, 10, 10, 10]);
      expect(rest.every((r) => r.error === undefined && r.done?.finishReason === 'stop')).toBe(true);
      expect(h2.sessions).toHaveLength(1);
    } finally {
      await h2.close();
    }
  });

  it('fails an endless error body at a bounded size, and closes that request', async () => {
    const h1 = await endlessProvider(
      500,
      'application/json',
      '{"error":{"message":"overloaded, and then some"}}',
      ' '.repeat(4096),
    );
    try {
      const r = await run(provider({ baseUrl: h1.url, maxRetries: 0 }));
      expect(r.error).toMatchObject({ code: 'MODEL_HTTP_ERROR', status: 500 });
      expect((r.error as Error).message).toContain('overloaded, and then some');
      await waitFor(() => h1.closed() === 1);
    } finally {
      await h1.close();
    }
  });
  it('fails a stream whose line never ends, and closes that request', async () => {
    const h1 = await endlessProvider(
      200,
      'text/event-stream',
      'data: {"choices":[{"delta":{"content":"',
      'x'.repeat(64 * 1024),
    );
    try {
      const r = await run(provider({ baseUrl: h1.url, maxRetries: 0 }));
      expect(r.error).toMatchObject({ code: 'MODEL_STREAM_ERROR' });
      expect((r.error as Error).message).toContain(`a line longer than ${MAX_SSE_EVENT_BYTES} bytes`);
      expect(r.tokens).toEqual([]);
      await waitFor(() => h1.closed() === 1);
    } finally {
      await h1.close();
    }
  });
  it('reports a refused connection as a retryable HTTP error after the retries', async () => {
    const r = await run(provider({ baseUrl: 'http://127.0.0.1:1/v1', maxRetries: 1 }));
    expect(r.error).toMatchObject({ code: 'MODEL_HTTP_ERROR' });
    expect(warnings).toHaveLength(1);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 5000) {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('buildPrompt', () => {
  const memory = { conversation: [], episodic: [] };
  const pair = (n: number, size = 40) => [
    { role: 'user' as const, content: `pergunta ${n} ${'x'.repeat(size)}` },
    { role: 'assistant' as const, content: `resposta ${n} ${'y'.repeat(size)}` },
  ];

  it('puts the system prompt first and the user message last', () => {
    const out = buildPrompt({
      systemPrompt: 'SISTEMA',
      history: [],
      memory,
      userMessage: 'oi',
      historyTokenBudget: 1000,
    });
    expect(out).toEqual([
      { role: 'system', content: 'SISTEMA' },
      { role: 'user', content: 'oi' },
    ]);
  });

  it('keeps the most recent exchanges that fit the budget, dropping the oldest first', () => {
    const history = [...pair(1), ...pair(2), ...pair(3), ...pair(4)];
    const perPair = estimateTokens(history[0]!.content) + estimateTokens(history[1]!.content);
    const out = buildPrompt({
      systemPrompt: 'S',
      history,
      memory,
      userMessage: 'agora',
      historyTokenBudget: perPair * 2 + 1,
    });
    expect(out.map((m) => m.content.split(' ').slice(0, 2).join(' '))).toEqual([
      'S',
      'pergunta 3',
      'resposta 3',
      'pergunta 4',
      'resposta 4',
      'agora',
    ]);
    expect(
      buildPrompt({ systemPrompt: 'S', history, memory, userMessage: 'u', historyTokenBudget: 0 }),
    ).toHaveLength(2);
  });

  it('keeps user/assistant alternation: unanswered questions, empty replies and orphan replies are dropped', () => {
    const history = [
      { role: 'assistant' as const, content: 'boas-vindas sem pergunta' },
      ...pair(1),
      { role: 'user' as const, content: 'pergunta sem resposta' },
      { role: 'user' as const, content: 'pergunta cuja resposta falhou' },
      { role: 'assistant' as const, content: '   ' },
      ...pair(2),
    ];
    const out = buildPrompt({
      systemPrompt: 'S',
      history,
      memory,
      userMessage: 'agora',
      historyTokenBudget: 10_000,
    });
    expect(out.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'user']);
    expect(out[1]!.content).toMatch(/^pergunta 1/);
    expect(out[3]!.content).toMatch(/^pergunta 2/);
  });

  it('adds a short memory section and the request context as compact JSON', () => {
    const out = buildPrompt({
      systemPrompt: 'S',
      history: [],
      memory: {
        conversation: Array.from({ length: 9 }, (_, i) => `turno ${i}`),
        episodic: ['gosta de dados de saúde'],
      },
      userMessage: 'u',
      historyTokenBudget: 100,
      context: { municipio: 'Recife', ano: 2024 },
    });
    const system = out[0]!.content;
    expect(system.startsWith('S\n\n## Memória')).toBe(true);
    expect(system).toContain('- turno 8');
    expect(system).not.toContain('turno 3');
    expect(system).toContain('gosta de dados de saúde');
    expect(system).toContain('{"municipio":"Recife","ano":2024}');
  });
});

describe('personas', () => {
  const ids = [
    'abaporu',
    'zumbi',
    'anita',
    'tiradentes',
    'drummond',
    'machado',
    'bonifacio',
    'maria_quiteria',
    'oxossi',
    'oscar_niemeyer',
    'dandara',
    'lampiao',
    'nana',
    'ceuci',
    'obaluaie',
    'senna',
    'santos_dumont',
    'bo_bardi',
    'monteiro_lobato',
    'tarsila',
    'deodoro',
  ];
  it('has a Portuguese prompt with the ground rules for every canonical agent', () => {
    expect(Object.keys(personas).sort()).toEqual([...ids].sort());
    for (const id of ids) {
      const p = personas[id]!.systemPrompt;
      expect(p).toMatch(/português do Brasil/);
      expect(p).toMatch(/Nunca invente números/);
      expect(p).toMatch(/dados de amostra/);
      expect(p).toMatch(/Markdown/);
    }
    expect(new Set(ids.map((id) => personas[id]!.systemPrompt.slice(0, 60))).size).toBe(ids.length);
  });
});
