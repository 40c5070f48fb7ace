// The OpenAI-compatible streaming client (Maritaca, Groq, OpenAI, OpenRouter, Ollama, vLLM): undici (HTTP/1.1) or node:http2, + SSE.
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
// The pool alone: undici's index loads all of it (fetch, WebSocket, caches, mocks), ≈ 100 modules
// and several MB of every instance's memory this client never uses.
import Agent from 'undici/lib/dispatcher/agent.js';
import { H2Client } from './h2-client.js';
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
 * The connections to a provider. Over HTTP/1.1, undici's keep-alive pool: a streaming reply holds
 * its socket until the model finishes (finished sockets are kept for the next reply). With
 * `http2`, up to 100 replies share one connection (H2Client, on node:http2). Not for a provider
 * that answers only HTTP/1.1 over https: ALPN must pick h2.
 */
export function createModelDispatcher(origin: string, http2: boolean): Pick<Dispatcher, 'dispatch'> {
  if (!http2) return new Agent({ keepAliveTimeout: 10_000, headersTimeout: 0, bodyTimeout: 0 });
  return new H2Client(origin, H2_STREAMS, 10_000);
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
