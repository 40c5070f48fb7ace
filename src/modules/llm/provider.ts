// The model provider interface: what the generation producer needs from any model backend.

export interface ChatTurnMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ModelRequest {
  /** The model to call (per-agent override already applied). */
  model: string;
  messages: ChatTurnMessage[];
  maxTokens?: number;
  temperature?: number;
  /** Aborting it must abort the upstream HTTP request (stop, cancel-on-disconnect, shutdown). */
  signal: AbortSignal;
}

export interface ModelUsage {
  prompt_tokens: number;
  completion_tokens: number;
  /** True when the provider reported no usage and the numbers are estimates. */
  estimated: boolean;
}

export type ModelEvent =
  /** A piece of generated text, forwarded as it arrives (never empty). */
  | { type: 'token'; text: string }
  /** The last event of a successful stream. */
  | { type: 'done'; finishReason: string; usage: ModelUsage };

/** Where a pushing model stream delivers its events (see PushingModelStream). */
export interface ModelSink {
  modelEvent(ev: ModelEvent): void;
  /** The stream is over: null after its `done` event, else what went wrong (as iteration would throw it). */
  modelEnded(err: Error | null): void;
}

/**
 * A model stream that can also push its events as they arrive, instead of being iterated: a reply
 * that waits minutes for its tokens then holds no suspended reader and no pending promise.
 */
export interface PushingModelStream extends AsyncIterable<ModelEvent> {
  /** From here the stream no longer watches the request's signal: it is aborted through abort(). */
  pipe(sink: ModelSink): void;
  /** Closes the request; the sink's modelEnded gets `err`. */
  abort(err: Error): void;
}

export function isPushing(stream: AsyncIterable<ModelEvent>): stream is PushingModelStream {
  return typeof (stream as Partial<PushingModelStream>).pipe === 'function';
}

export interface ModelProvider {
  kind: 'openai-compatible';
  /** One line for the boot log: what serves the model. */
  describe: string;
  /** The model name a request for this agent uses. */
  modelFor(agentId: string): string;
  /**
   * Streams a completion. Throws ModelError on failure; `retryable` errors are retried only
   * before the first token. An abort through `signal` ends the iteration with an AbortError.
   */
  stream(req: ModelRequest): AsyncIterable<ModelEvent>;
}

export class ModelError extends Error {
  override name = 'ModelError';
  constructor(
    message: string,
    readonly code: 'MODEL_TIMEOUT' | 'MODEL_HTTP_ERROR' | 'MODEL_STREAM_ERROR' | 'MODEL_BAD_RESPONSE',
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A rough token estimate (≈4 characters per token) used when a provider reports no usage. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
