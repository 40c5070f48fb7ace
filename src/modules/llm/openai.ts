// The OpenAI-compatible streaming client (Maritaca, Groq, OpenAI, OpenRouter, Ollama, vLLM) over undici + SSE.
import type { Logger } from 'pino';
import type { buildConnector as BuildConnector, Dispatcher } from 'undici';
// The pool and the connector alone: undici's index loads all of it (fetch, WebSocket, caches,
// mocks), ≈ 100 modules and several MB of every instance's memory this client never uses.
import buildConnector from 'undici/lib/core/connect.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import { H2Pool } from './h2-pool.js';
import { type CompletionClient, ModelStream } from './model-stream.js';
import type { ModelProvider } from './provider.js';

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

/** Streams per HTTP/2 connection: what Node and most HTTP/2 servers allow by default. */
const H2_STREAMS = 100;

/**
 * One keep-alive connection pool per provider (undici). Over HTTP/1.1 a streaming reply holds its
 * socket until the model finishes (finished sockets are kept for the next reply). With `http2`, up
 * to 100 replies share one connection (H2Pool: connections opened one at a time, as many as the
 * replies need): undici would not multiplex a POST (not idempotent: a broken connection fails every
 * stream on it), so our requests say they may be (`idempotent: true` on each request, see
 * ModelStream); a reply whose connection breaks fails or retries on its own terms. Not for a
 * provider that answers only HTTP/1.1 over https: pipelined streams would wait behind each other.
 */
export function createModelDispatcher(origin: string, http2: boolean): Pick<Dispatcher, 'dispatch'> {
  if (!http2) return new Agent({ keepAliveTimeout: 10_000, headersTimeout: 0, bodyTimeout: 0 });
  return new H2Pool(
    origin,
    {
      allowH2: true,
      // Over http: h2c with prior knowledge (the default connector would speak HTTP/1.1).
      ...(origin.startsWith('https:')
        ? {}
        : { connect: buildConnector({ allowH2: true, useH2c: true } as BuildConnector.BuildOptions) }),
      maxConcurrentStreams: H2_STREAMS,
      pipelining: H2_STREAMS,
      keepAliveTimeout: 10_000,
      // The connect and idle clocks are ours (per read, abortable): undici's must not fire first.
      headersTimeout: 0,
      bodyTimeout: 0,
    },
    H2_STREAMS,
  );
}

export function createOpenAIProvider(opts: OpenAIProviderOptions): ModelProvider {
  const endpoint = `${opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const url = new URL(endpoint);
  const maxRetries = opts.maxRetries ?? 2;
  const http2 = opts.http2 ?? false;
  const dispatcher = createModelDispatcher(url.origin, http2);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'text/event-stream',
  };
  // Ollama and local vLLM need no key; an empty one must not become "Bearer ".
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;

  const client: CompletionClient = {
    dispatcher,
    origin: url.origin,
    path: url.pathname + url.search,
    headers,
    idempotent: http2,
    connectTimeoutMs: opts.connectTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    maxRetries,
    maxTokens: opts.maxTokens,
    log: opts.log,
  };

  let host = opts.baseUrl;
  try {
    host = new URL(opts.baseUrl).host;
  } catch {}
  const overrides = Object.keys(opts.agentModels).length;
  return {
    kind: 'openai-compatible',
    describe: `openai-compatible ${host}, model ${opts.model}${overrides ? ` (+${overrides} agent overrides)` : ''}`,
    modelFor: (agentId) => opts.agentModels[agentId] ?? opts.model,
    stream: (req) => new ModelStream(client, req),
  };
}
