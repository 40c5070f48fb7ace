// A real local HTTP server speaking the OpenAI chat-completions streaming format, scriptable per request.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createOpenAIProvider, type OpenAIProviderOptions } from '../../src/modules/llm/openai.js';
import type { ModelProvider } from '../../src/modules/llm/provider.js';

export interface FakeModelScript {
  /** The content deltas to stream; default: a short Portuguese sentence. */
  tokens?: string[];
  /** Pause between tokens. */
  delayMs?: number;
  /** Pause between the response headers and the first token. */
  firstTokenDelayMs?: number;
  /** Answer the first N requests that use this script with `failStatus` (default 500). */
  failTimes?: number;
  failStatus?: number;
  /** Destroy the socket after N tokens. */
  dropAfter?: number;
  /** Send the usage chunk (default true). */
  usage?: boolean;
  /** Send the headers, then nothing. */
  hang?: boolean;
  finishReason?: string;
  /** Hold the response headers back this long (exercises the client's connect timeout). */
  headersDelayMs?: number;
  /** Frame with CRLF line ends instead of LF. */
  crlf?: boolean;
  /** Send `: keep-alive` comment lines between events, as OpenRouter does. */
  comments?: boolean;
  /** Write each event in small pieces, paused apart, so events (and UTF-8 sequences) straddle reads. */
  fragment?: boolean;
  /** Put finish_reason and usage into the last content chunk instead of separate chunks. */
  finishInLastToken?: boolean;
  /** Omit the final `data: [DONE]`. */
  noDone?: boolean;
}

export interface FakeModelRequest {
  /** The parsed JSON the client sent. */
  body: {
    model?: string;
    messages?: Array<{ role: string; content: string }>;
    stream?: boolean;
    max_tokens?: number;
    [field: string]: unknown;
  };
  headers: Record<string, string | string[] | undefined>;
  /** The client closed the socket before the server finished the response. */
  aborted: boolean;
  finished: boolean;
  /** Content tokens written so far. */
  tokensSent: number;
}

export interface FakeModel {
  /** Base URL ending in /v1. */
  url: string;
  setScript(s: FakeModelScript): void;
  queueScript(s: FakeModelScript): void;
  requests: FakeModelRequest[];
  waitForAbort(index: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** The prompt_tokens the fake reports, so tests can tell reported usage from an estimate. */
export const FAKE_PROMPT_TOKENS = 37;
export const DEFAULT_TOKENS = ['Olá! ', 'Esta ', 'é ', 'uma ', 'resposta ', 'de ', 'teste.'];

export async function startFakeModel(defaultScript: FakeModelScript = {}): Promise<FakeModel> {
  let current: FakeModelScript = { ...defaultScript };
  const queue: FakeModelScript[] = [];
  // Failures are counted per script object, so setScript/queueScript start a fresh count.
  const failures = new WeakMap<FakeModelScript, number>();
  const requests: FakeModelRequest[] = [];
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  let seq = 0;

  // Picks the script for a request; a queued script is consumed by its first non-failing request.
  function pick(): { script: FakeModelScript; fail: boolean } {
    const script = queue[0] ?? current;
    const failed = failures.get(script) ?? 0;
    if (failed < (script.failTimes ?? 0)) {
      failures.set(script, failed + 1);
      return { script, fail: true };
    }
    if (queue[0] === script) queue.shift();
    return { script, fail: false };
  }

  async function respond(res: ServerResponse, record: FakeModelRequest) {
    const { script, fail } = pick();
    const state = { closed: false, dropped: false };
    // Pauses end early when the connection closes, so no timer outlives its request.
    const wakers = new Set<() => void>();
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          wakers.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        wakers.add(done);
      });
    res.on('finish', () => {
      record.finished = true;
    });
    res.on('close', () => {
      state.closed = true;
      if (!res.writableFinished && !state.dropped) record.aborted = true;
      for (const wake of [...wakers]) wake();
      notify();
    });
    if (script.headersDelayMs) await sleep(script.headersDelayMs);
    if (state.closed) return;
    if (fail) {
      const status = script.failStatus ?? 500;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ error: { message: `scripted failure ${status}`, type: 'fake', code: status } }),
      );
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
    if (script.hang) return;

    const nl = script.crlf ? '\r\n' : '\n';
    const id = `chatcmpl-fake-${++seq}`;
    const model = String(record.body?.model ?? 'fake');
    const created = Math.floor(Date.now() / 1000);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra });
    // Waiting for each write to reach the socket makes dropAfter cut after exactly N delivered tokens.
    const write = (data: string | Uint8Array) =>
      new Promise<void>((resolve) => {
        res.write(data, () => resolve());
      });
    const send = async (payload: string) => {
      if (state.closed) return;
      let frame = `data: ${payload}${nl}${nl}`;
      if (script.comments) frame = `: keep-alive${nl}${nl}${frame}`;
      if (!script.fragment) {
        await write(frame);
        return;
      }
      // Split the bytes (not the characters) so a multi-byte character can straddle two reads.
      const bytes = Buffer.from(frame);
      const step = Math.max(1, Math.ceil(bytes.length / 3));
      for (let i = 0; i < bytes.length && !state.closed; i += step) {
        await write(bytes.subarray(i, i + step));
        await sleep(3);
      }
    };

    const tokens = script.tokens ?? DEFAULT_TOKENS;
    const finishReason = script.finishReason ?? 'stop';
    const usage = {
      prompt_tokens: FAKE_PROMPT_TOKENS,
      completion_tokens: tokens.length,
      total_tokens: FAKE_PROMPT_TOKENS + tokens.length,
    };
    if (script.firstTokenDelayMs) await sleep(script.firstTokenDelayMs);
    for (let i = 0; i < tokens.length; i++) {
      if (state.closed) return;
      if (script.dropAfter !== undefined && i >= script.dropAfter) {
        state.dropped = true;
        res.socket?.destroy();
        return;
      }
      if (i > 0 && script.delayMs) await sleep(script.delayMs);
      if (state.closed) return;
      const last = i === tokens.length - 1 && script.finishInLastToken;
      const delta = i === 0 ? { role: 'assistant', content: tokens[i] } : { content: tokens[i] };
      const extra = last && script.usage !== false ? { usage } : {};
      await send(chunk([{ index: 0, delta, finish_reason: last ? finishReason : null }], extra));
      if (state.closed) return;
      record.tokensSent++;
    }
    if (script.dropAfter !== undefined) {
      state.dropped = true;
      res.socket?.destroy();
      return;
    }
    if (!script.finishInLastToken) {
      await send(chunk([{ index: 0, delta: {}, finish_reason: finishReason }]));
      if (script.usage !== false) await send(chunk([], { usage }));
    }
    if (!script.noDone) await send('[DONE]');
    if (!state.closed) res.end();
  }

  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'not found' } }));
        return;
      }
      let body: FakeModelRequest['body'];
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'invalid JSON' } }));
        return;
      }
      const record: FakeModelRequest = {
        body,
        headers: { ...req.headers },
        aborted: false,
        finished: false,
        tokensSent: 0,
      };
      requests.push(record);
      notify();
      respond(res, record).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    setScript(s) {
      current = { ...s };
    },
    queueScript(s) {
      queue.push({ ...s });
    },
    requests,
    waitForAbort(index, timeoutMs = 5000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!requests[index]?.aborted) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`fake model: request ${index} was not aborted within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The real OpenAI-compatible provider, pointed at a fake model server. */
export function fakeProvider(fake: FakeModel, opts: Partial<OpenAIProviderOptions> = {}): ModelProvider {
  return createOpenAIProvider({
    baseUrl: fake.url,
    apiKey: 'k',
    model: 'm',
    agentModels: {},
    connectTimeoutMs: 3000,
    idleTimeoutMs: 5000,
    log: pino({ level: 'silent' }),
    ...opts,
  });
}
