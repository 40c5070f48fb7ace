// The OpenAI-compatible streaming client (Maritaca, Groq, OpenAI, OpenRouter, Ollama, vLLM) over undici + SSE.
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import {
  estimateTokens,
  ModelError,
  type ModelEvent,
  type ModelProvider,
  type ModelRequest,
  type ModelUsage,
} from './provider.js';

export interface OpenAIProviderOptions {
  baseUrl: string;
  apiKey: string;
  model: string;
  agentModels: Record<string, string>;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxRetries?: number;
  maxTokens?: number;
  /**
   * The provider speaks HTTP/2 (https: negotiated by ALPN; http: h2c with prior knowledge): replies
   * share connections as streams. Off: HTTP/1.1, where a streaming reply holds its own socket.
   */
  http2?: boolean;
  log: Pick<Logger, 'warn' | 'debug'>;
}

/**
 * One keep-alive connection pool per provider (undici). Over HTTP/1.1 a streaming reply holds its
 * socket until the model finishes (finished sockets are kept for the next reply). With `http2`, up
 * to 100 replies share one connection: undici would not multiplex a POST (not idempotent: a broken
 * connection fails every stream on it), so our requests say they may be (`idempotent: true` on each
 * request, see `attempt`); a reply whose connection breaks fails or retries on its own terms. Not
 * for a provider that answers only HTTP/1.1 over https: pipelined streams would wait behind each other.
 */
export function createModelDispatcher(http2: boolean, https: boolean): Dispatcher {
  if (!http2) return new Agent({ keepAliveTimeout: 10_000, headersTimeout: 0, bodyTimeout: 0 });
  const streams = 100; // what Node and most HTTP/2 servers allow per connection by default
  return new Agent({
    allowH2: true,
    // The pool builds its own connector and would drop `useH2c`: given here, it is used as is.
    ...(https
      ? {}
      : { connect: buildConnector({ allowH2: true, useH2c: true } as buildConnector.BuildOptions) }),
    maxConcurrentStreams: streams,
    pipelining: streams,
    keepAliveTimeout: 10_000,
    // The connect and idle clocks are ours (per read, abortable): undici's must not fire first.
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

/**
 * The request body in memory of its own, exactly its size. `Buffer.from` would cut a small body
 * out of Node's shared 8 KB pool, and undici keeps the body for the life of the response (a
 * streaming reply: minutes), which keeps the whole 8 KB slab alive with it.
 */
export function ownBuffer(text: string): Buffer {
  const buf = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  buf.write(text);
  return buf;
}

/**
 * Incremental SSE decoder: bytes in, split anywhere (even inside a UTF-8 sequence or a CRLF),
 * the `data` payload of each complete event out. Comments and other fields are dropped.
 */
export function createSseDecoder() {
  // StringDecoder, not TextDecoder: Node's TextDecoder holds a native ICU converter for as long as
  // the reply streams; StringDecoder keeps at most the 3 bytes of a split character.
  const decoder = new StringDecoder('utf8');
  let buf = '';
  let data: string[] = [];
  const line = (text: string, out: string[]) => {
    if (text === '') {
      if (data.length > 0) out.push(data.join('\n'));
      data = [];
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    if ((colon < 0 ? text : text.slice(0, colon)) !== 'data') return;
    const value = colon < 0 ? '' : text.slice(colon + 1);
    data.push(value.startsWith(' ') ? value.slice(1) : value);
  };
  const scan = (final: boolean): string[] => {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A CR at the very end may be the first half of a CRLF still in flight.
      if (c === 13 && i + 1 === buf.length && !final) break;
      line(buf.slice(start, i), out);
      if (c === 13 && buf.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    buf = buf.slice(start);
    if (final) {
      if (buf) line(buf, out);
      buf = '';
      line('', out);
    }
    return out;
  };
  return {
    push(chunk: Uint8Array): string[] {
      buf += decoder.write(chunk);
      return scan(false);
    },
    end(): string[] {
      buf += decoder.end();
      return scan(true);
    },
  };
}

interface Chunk {
  choices?: Array<{
    delta?: { content?: unknown };
    finish_reason?: unknown;
  }>;
  usage?: unknown;
  x_groq?: { usage?: unknown };
  error?: { message?: unknown; code?: unknown } | string;
}

function reportedUsage(u: unknown): { prompt?: number; completion?: number } {
  if (!u || typeof u !== 'object') return {};
  const { prompt_tokens: p, completion_tokens: c } = u as Record<string, unknown>;
  return {
    prompt: typeof p === 'number' && p >= 0 ? p : undefined,
    completion: typeof c === 'number' && c >= 0 ? c : undefined,
  };
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const err = new Error('model request aborted', { cause: reason });
  err.name = 'AbortError';
  return err;
}

function causeOf(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const own = (err as { code?: string })?.code;
  return (
    e?.cause?.code ??
    e?.cause?.message ??
    (own?.startsWith('E') ? own : undefined) ??
    e?.message ??
    String(err)
  );
}

const isRetryableStatus = (s: number) => s === 408 || s === 429 || s >= 500;

// Retry-After travels beside the error: ModelError's shape belongs to the provider interface.
const retryAfter = new WeakMap<ModelError, number>();

/** A non-2xx answer as a ModelError carrying the provider's own message and any Retry-After. */
async function httpError(res: Dispatcher.ResponseData): Promise<ModelError> {
  const text = await res.body.text().catch(() => '');
  let detail = text;
  try {
    const e = (JSON.parse(text) as Chunk).error;
    detail = typeof e === 'string' ? e : String(e?.message ?? text);
  } catch {}
  const err = new ModelError(
    `model HTTP ${res.statusCode}: ${detail.slice(0, 300)}`,
    'MODEL_HTTP_ERROR',
    isRetryableStatus(res.statusCode),
    res.statusCode,
  );
  // Providers send delay-seconds; an HTTP date reads as NaN and is ignored.
  const header = res.headers['retry-after'];
  const after = Number((Array.isArray(header) ? header[0] : header) ?? Number.NaN);
  if (after >= 0) retryAfter.set(err, after * 1000);
  return err;
}

/** Accumulates what a completion's chunks say besides content: finish reason and usage. */
function createCompletion() {
  const acc = {
    text: '',
    finishReason: null as string | null,
    usage: {} as { prompt?: number; completion?: number },
    /** Returns the chunk's content delta (or null), throwing the provider's in-stream error. */
    take(chunk: Chunk, beforeFirstToken: boolean): string | null {
      if (chunk.error) {
        const e = chunk.error;
        const code = typeof e === 'object' ? e.code : undefined;
        const retryable = beforeFirstToken && (typeof code !== 'number' || isRetryableStatus(code));
        const message = typeof e === 'string' ? e : String(e.message ?? 'unknown error');
        throw new ModelError(`model stream error: ${message}`, 'MODEL_STREAM_ERROR', retryable);
      }
      // Groq reports usage under x_groq; OpenAI sends it in a last chunk whose choices are empty.
      const u = reportedUsage(chunk.usage ?? chunk.x_groq?.usage);
      if (u.prompt !== undefined || u.completion !== undefined) acc.usage = u;
      for (const choice of chunk.choices ?? []) {
        if (typeof choice.finish_reason === 'string' && choice.finish_reason)
          acc.finishReason = choice.finish_reason;
      }
      const first = chunk.choices?.[0];
      const content = first?.delta?.content;
      if (typeof content !== 'string' || content.length === 0) return null;
      acc.text += content;
      return content;
    },
    result(messages: ModelRequest['messages']): { finishReason: string; usage: ModelUsage } {
      const { prompt, completion } = acc.usage;
      return {
        finishReason: acc.finishReason ?? 'stop',
        usage: {
          prompt_tokens: prompt ?? messages.reduce((n, m) => n + estimateTokens(m.content), 0),
          completion_tokens: completion ?? (acc.text ? estimateTokens(acc.text) : 0),
          estimated: prompt === undefined || completion === undefined,
        },
      };
    },
  };
  return acc;
}

export function createOpenAIProvider(opts: OpenAIProviderOptions): ModelProvider {
  const endpoint = `${opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const url = new URL(endpoint);
  const maxRetries = opts.maxRetries ?? 2;
  const http2 = opts.http2 ?? false;
  const dispatcher = createModelDispatcher(http2, endpoint.startsWith('https:'));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'text/event-stream',
  };
  // Ollama and local vLLM need no key; an empty one must not become "Bearer ".
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;

  async function* attempt(req: ModelRequest, progress: { tokens: number }): AsyncGenerator<ModelEvent> {
    // Checked here, not once up front: an abort that lands as a backoff ends must not start a request.
    if (req.signal.aborted) throw abortError(req.signal);
    const ctrl = new AbortController();
    const state: { timedOut: 'connect' | 'idle' | null } = { timedOut: null };
    const arm = (kind: 'connect' | 'idle', ms: number) =>
      setTimeout(() => {
        state.timedOut = kind;
        ctrl.abort();
      }, ms);
    const onAbort = () => ctrl.abort();
    req.signal.addEventListener('abort', onAbort, { once: true });
    let timer = arm('connect', opts.connectTimeoutMs);
    let completed = false;

    // Whatever went wrong, say it as a ModelError (or the caller's AbortError).
    const fail = (err: unknown, stage: 'connect' | 'body'): Error => {
      if (req.signal.aborted) return abortError(req.signal);
      const before = progress.tokens === 0;
      if (state.timedOut) {
        const ms = state.timedOut === 'connect' ? opts.connectTimeoutMs : opts.idleTimeoutMs;
        // A connect timeout is a network failure (retried); a stalled stream is not worth waiting on twice.
        return new ModelError(
          `model ${state.timedOut} timeout after ${ms} ms`,
          'MODEL_TIMEOUT',
          before && state.timedOut === 'connect',
        );
      }
      if (err instanceof ModelError) return err;
      return stage === 'connect'
        ? new ModelError(`model request failed: ${causeOf(err)}`, 'MODEL_HTTP_ERROR', before)
        : new ModelError(`model stream broke: ${causeOf(err)}`, 'MODEL_STREAM_ERROR', before);
    };

    const body: Record<string, unknown> = {
      model: req.model,
      messages: req.messages,
      stream: true,
      stream_options: { include_usage: true },
    };
    const maxTokens = req.maxTokens ?? opts.maxTokens;
    if (maxTokens !== undefined) body.max_tokens = maxTokens;
    if (req.temperature !== undefined) body.temperature = req.temperature;

    let stage: 'connect' | 'body' = 'connect';
    try {
      // undici's request, not fetch: no WHATWG Request/Response/stream objects per reply, and a
      // string body, which an HTTP/2 connection may multiplex (fetch streams every body).
      const res = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'POST',
        headers,
        // A Buffer: undici keeps the body for the life of the response, once (a string it would
        // keep twice, as given and encoded), and not in a pooled slab (see ownBuffer).
        body: ownBuffer(JSON.stringify(body)),
        signal: ctrl.signal,
        // May share an HTTP/2 connection (see createModelDispatcher). Said here rather than by a
        // composed dispatcher: that wraps each request's handler twice (new and legacy handler
        // APIs), and the wrapper keeps the response's raw header Buffers (pooled slabs) per reply.
        idempotent: http2,
      });
      stage = 'body';
      clearTimeout(timer);
      timer = arm('idle', opts.idleTimeoutMs);

      if (res.statusCode < 200 || res.statusCode > 299) throw await httpError(res);

      const completion = createCompletion();
      let sawDone = false;
      const reader = res.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const sse = createSseDecoder();
      while (!sawDone) {
        // The idle clock runs only while waiting on the network, never while the consumer holds a token.
        clearTimeout(timer);
        timer = arm('idle', opts.idleTimeoutMs);
        const r = await reader.next();
        clearTimeout(timer);
        const payloads = r.done ? sse.end() : sse.push(r.value);
        for (const payload of payloads) {
          if (payload.trim() === '[DONE]') {
            sawDone = true;
            break;
          }
          let chunk: Chunk;
          try {
            chunk = JSON.parse(payload) as Chunk;
          } catch {
            opts.log.debug({ payload: payload.slice(0, 200) }, 'model sent a non-JSON event; skipped');
            continue;
          }
          const content = completion.take(chunk, progress.tokens === 0);
          if (content !== null) {
            progress.tokens++;
            yield { type: 'token', text: content };
          }
        }
        if (r.done) break;
      }
      if (!sawDone && completion.finishReason === null) {
        throw new ModelError(
          'model stream ended before completion',
          'MODEL_STREAM_ERROR',
          progress.tokens === 0,
        );
      }
      clearTimeout(timer);
      completed = true;
      // Whatever follows [DONE] is read and dropped, so the connection returns to the pool.
      if (sawDone) void res.body.dump().catch(() => {});
      yield { type: 'done', ...completion.result(req.messages) };
    } catch (err) {
      throw fail(err, stage);
    } finally {
      clearTimeout(timer);
      req.signal.removeEventListener('abort', onAbort);
      // Early exit (error, consumer stopped iterating): close the socket so the upstream stops billing.
      if (!completed) ctrl.abort();
    }
  }

  async function* stream(req: ModelRequest): AsyncGenerator<ModelEvent> {
    const progress = { tokens: 0 };
    for (let n = 0; ; n++) {
      try {
        yield* attempt(req, progress);
        return;
      } catch (err) {
        const retry =
          err instanceof ModelError &&
          err.retryable &&
          progress.tokens === 0 &&
          n < maxRetries &&
          !req.signal.aborted;
        if (!retry) throw err;
        const backoff = 250 * 3 ** n * (0.8 + Math.random() * 0.4);
        const waitMs = Math.round(Math.min(5000, Math.max(backoff, retryAfter.get(err) ?? 0)));
        opts.log.warn(
          { code: err.code, status: err.status, err: err.message, attempt: n + 1, waitMs },
          'model request failed before the first token; retrying',
        );
        try {
          await delay(waitMs, undefined, { signal: req.signal });
        } catch {
          throw abortError(req.signal);
        }
      }
    }
  }

  let host = opts.baseUrl;
  try {
    host = new URL(opts.baseUrl).host;
  } catch {}
  const overrides = Object.keys(opts.agentModels).length;
  return {
    kind: 'openai-compatible',
    describe: `openai-compatible ${host}, model ${opts.model}${overrides ? ` (+${overrides} agent overrides)` : ''}`,
    modelFor: (agentId) => opts.agentModels[agentId] ?? opts.model,
    stream,
  };
}
