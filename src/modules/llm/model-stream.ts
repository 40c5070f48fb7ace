// One streamed completion over undici's dispatch: SSE parsed as the bytes arrive, events read through one async iterator.
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import {
  type ChatTurnMessage,
  estimateTokens,
  ModelError,
  type ModelEvent,
  type ModelRequest,
  type ModelSink,
  type PushingModelStream,
} from './provider.js';
import { SseDecoder, SseTooLarge } from './sse-decoder.js';

/** What every stream of one provider shares. */
export interface CompletionClient {
  /** undici's Agent (HTTP/1.1), or an H2Client (HTTP/2). */
  dispatcher: Pick<Dispatcher, 'dispatch'>;
  origin: string;
  path: string;
  headers: Record<string, string>;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxRetries: number;
  maxTokens: number | undefined;
  log: Pick<Logger, 'warn' | 'debug'>;
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

/**
 * The request body, handed over once and then let go. undici keeps the body it was given for the
 * life of the response (on its request object), which for a streaming reply is minutes: a Buffer
 * kept the whole prompt (≈ 2 KB) per live reply. A Blob-like object (undici's `isBlobLike`: tagged
 * `Blob`, with `size` and `arrayBuffer()`) is kept instead, and it gives its bytes away when undici
 * (or H2Client, which reads it the same way) takes them. Not an iterable: undici would not know its
 * length. The body is read once: a retry (ours,
 * see `failed`) is a new request with a body of its own. The bytes are in memory of their own,
 * exactly their size, so the ArrayBuffer is the body and nothing else.
 */
class OnceBody {
  readonly size: number;
  private bytes: ArrayBuffer | null;

  constructor(text: string) {
    this.size = Buffer.byteLength(text);
    const buf = Buffer.allocUnsafeSlow(this.size);
    buf.write(text);
    this.bytes = buf.buffer as ArrayBuffer;
  }

  get [Symbol.toStringTag](): string {
    return 'Blob';
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.bytes;
    this.bytes = null;
    return bytes ? Promise.resolve(bytes) : Promise.reject(new Error('request body already sent'));
  }
}

type ReportedUsage = { prompt?: number; completion?: number };
/** Shared: a stream whose provider reports no usage keeps no object of its own for it. */
const NO_USAGE: ReportedUsage = Object.freeze({});

function reportedUsage(u: unknown): ReportedUsage {
  if (!u || typeof u !== 'object') return NO_USAGE;
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
function httpError(status: number, text: string, retryAfterHeader: string | undefined): ModelError {
  let detail = text;
  try {
    const e = (JSON.parse(text) as Chunk).error;
    detail = typeof e === 'string' ? e : String(e?.message ?? text);
  } catch {}
  const err = new ModelError(
    `model HTTP ${status}: ${detail.slice(0, 300)}`,
    'MODEL_HTTP_ERROR',
    isRetryableStatus(status),
    status,
  );
  // Providers send delay-seconds; an HTTP date reads as NaN and is ignored.
  const after = Number(retryAfterHeader ?? Number.NaN);
  if (after >= 0) retryAfter.set(err, after * 1000);
  return err;
}

/** A header of undici's raw list (name, value, name, value…), read without building the header object. */
function rawHeader(raw: Buffer[] | string[] | null, name: string): string | undefined {
  if (!raw) return undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === name) return String(raw[i + 1]);
  }
  return undefined;
}

/**
 * How much of an error answer's body is kept: the provider's message is at its start. An answer
 * longer than this fails the attempt at once (closing it), so a broken provider's endless body
 * costs neither memory nor the wait for its end.
 */
const MAX_ERROR_BODY = 16 * 1024;

/** Queued events (the consumer is behind) at which the response is paused until it catches up. */
const HIGH_WATER = 64;

type Clock = 'connect' | 'idle' | 'backoff';

// One function for every stream's timers (a stream passes itself; the clock is its `clock`): no
// closure, and no argument array beyond the stream, per timer.
const onClock = (s: ModelStream) => s.clockFired();

/**
 * One HTTP request of a stream (a retry is another one). undici's legacy handler interface, as its
 * own `request()` uses: the newer one wraps each handler in two more objects, one of which keeps
 * the response's raw header Buffers for as long as the reply streams. Once superseded (failed,
 * timed out, finished), its callbacks are ignored and a late connection is closed at once.
 */
class Attempt implements Dispatcher.DispatchHandler {
  abort: ((err?: Error) => void) | null = null;
  resume: (() => void) | null = null;
  status = 0;
  /** A non-2xx answer: its body (the provider's message, up to MAX_ERROR_BODY bytes) and Retry-After. */
  errorBody: Buffer[] | null = null;
  errorBytes = 0;
  retryAfter: string | undefined;
  readonly sse = new SseDecoder();

  constructor(private readonly owner: ModelStream) {}

  onConnect(abort: (err?: Error) => void): void {
    if (this.owner.attempt === this) this.abort = abort;
    else abort();
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200 || this.owner.attempt !== this) return true;
    return this.owner.responded(this, status, raw, resume);
  }

  onData(chunk: Buffer): boolean {
    return this.owner.attempt === this ? this.owner.received(this, chunk) : true;
  }

  onComplete(): void {
    if (this.owner.attempt === this) this.owner.completed(this);
  }

  onError(err: Error): void {
    if (this.owner.attempt === this) this.owner.failed(err);
  }
}

/**
 * A completion as an async iterator of token events and a last `done`. Retries before the first
 * token; the connect clock runs until the headers, the idle clock only while the consumer waits
 * (any bytes restart it). Aborting `req.signal`, a failure or the consumer leaving (`return()`)
 * closes the upstream request, so the provider stops generating. One object per reply instead of
 * two async generators, a Readable, its iterator and an AbortController.
 */
export class ModelStream implements AsyncIterableIterator<ModelEvent>, PushingModelStream {
  /** The request in flight; null between attempts and once the stream is settled. */
  attempt: Attempt | null = null;
  private tries = 0;
  private tokens = 0;
  private timer: NodeJS.Timeout | undefined;
  private clock: Clock | null = null;
  private timedOut: 'connect' | 'idle' | null = null;
  private readonly queue: ModelEvent[] = [];
  private paused = false;
  private failure: Error | null = null;
  private started = false;
  /** The last event is queued or the failure is known: nothing more arrives. */
  private settled = false;
  /** Piped (see pipe): events go here as they arrive; the consumer is always waiting. */
  private sink: ModelSink | null = null;
  private resolveNext: ((r: IteratorResult<ModelEvent>) => void) | null = null;
  private rejectNext: ((err: Error) => void) | null = null;
  // What the chunks said besides content (per attempt; a retry starts over).
  private finishReason: string | null = null;
  private usage: ReportedUsage = NO_USAGE;
  private chars = 0;

  /** The request's signal; a piped stream lets go of it and is aborted through abort() (see pipe). */
  private signal: AbortSignal | null;
  /** Why a piped stream was aborted through abort(). */
  private abortedWith: Error | null = null;
  /** What a retry sends again; dropped at the first token (no retry follows), with the prompt. */
  private request: ModelRequest | null;
  /** The prompt's token estimate, for a provider that reports no usage. */
  private readonly promptEstimate: number;

  constructor(
    private readonly client: CompletionClient,
    req: ModelRequest,
  ) {
    this.signal = req.signal;
    this.request = req;
    this.promptEstimate = req.messages.reduce(
      (n: number, m: ChatTurnMessage) => n + estimateTokens(m.content),
      0,
    );
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ModelEvent>> {
    if (!this.started) this.begin();
    const ev = this.queue.shift();
    if (ev) {
      if (this.paused && this.queue.length < HIGH_WATER / 2) {
        this.paused = false;
        this.attempt?.resume?.();
      }
      return Promise.resolve({ value: ev, done: false });
    }
    if (this.failure) {
      const err = this.failure;
      this.failure = null;
      return Promise.reject(err);
    }
    if (this.settled) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.resolveNext = resolve;
      this.rejectNext = reject;
      if (this.attempt && this.attempt.status > 0) this.startIdleClock();
    });
  }

  /**
   * Delivers the events to `sink` as they arrive instead of being iterated (one or the other).
   * From here the stream is aborted through abort(), not the request's signal: it lets go of the
   * signal, so a reply holds no AbortController (with its two listener maps) while it streams.
   */
  pipe(sink: ModelSink): void {
    this.sink = sink;
    this.begin();
    this.signal?.removeEventListener('abort', this);
    this.signal = null;
  }

  /** Aborts a piped stream: the upstream request is closed and the sink ends with `err`. */
  abort(err: Error): void {
    if (this.settled) return;
    this.abortedWith = err;
    this.handleEvent();
  }

  /** The consumer stopped iterating: the upstream request is closed (it stops billing). */
  return(): Promise<IteratorResult<ModelEvent>> {
    if (!this.settled) {
      this.drop();
      this.queue.length = 0;
      this.settle(null);
    }
    this.failure = null;
    return Promise.resolve({ value: undefined, done: true });
  }

  /** `req.signal`'s abort listener (an object listener: no closure per reply). */
  handleEvent(): void {
    if (this.settled) return;
    this.drop();
    this.queue.length = 0;
    this.settle(this.abortReason()!);
  }

  clockFired(): void {
    const kind = this.clock;
    this.timer = undefined;
    this.clock = null;
    if (!kind) return; // stopped (clearTimeout): unreachable, but never a timeout of nothing
    if (kind === 'backoff') {
      const aborted = this.abortReason();
      if (aborted) this.settle(aborted);
      else this.send();
      return;
    }
    // The idle clock counts only while the consumer waits; it starts over when it waits again.
    if (kind === 'idle' && !this.resolveNext && !this.sink) return;
    this.timedOut = kind;
    this.failed(null);
  }

  responded(a: Attempt, status: number, raw: Buffer[], resume: () => void): boolean {
    a.status = status;
    a.resume = resume;
    this.stopClock();
    if (status > 299) {
      a.errorBody = [];
      a.retryAfter = rawHeader(raw, 'retry-after');
    }
    if (this.resolveNext || this.sink) this.startIdleClock();
    return true;
  }

  received(a: Attempt, chunk: Buffer): boolean {
    if (this.clock === 'idle') this.timer?.refresh();
    if (a.errorBody) {
      a.errorBody.push(chunk);
      a.errorBytes += chunk.length;
      if (a.errorBytes >= MAX_ERROR_BODY) this.completed(a);
      return true;
    }
    const payloads = this.decode(a, chunk);
    if (!payloads) return true;
    for (const payload of payloads) if (!this.payload(payload)) return true;
    if (this.queue.length < HIGH_WATER) return true;
    this.paused = true;
    return false;
  }

  completed(a: Attempt): void {
    if (a.errorBody) {
      const body = Buffer.concat(a.errorBody).subarray(0, MAX_ERROR_BODY).toString('utf8');
      this.failed(httpError(a.status, body, a.retryAfter));
      return;
    }
    const payloads = this.decode(a, null);
    if (!payloads) return;
    for (const payload of payloads) if (!this.payload(payload)) return;
    if (this.finishReason === null) {
      this.failed(
        new ModelError('model stream ended before completion', 'MODEL_STREAM_ERROR', this.tokens === 0),
      );
      return;
    }
    this.finish();
  }

  /** Ends the attempt with what went wrong (a ModelError, or the caller's AbortError), then retries or fails. */
  failed(err: unknown): void {
    const status = this.attempt?.status ?? 0;
    this.drop();
    const e = this.describe(err, status);
    const n = this.tries;
    const { maxRetries, log } = this.client;
    const retry =
      e instanceof ModelError && e.retryable && this.tokens === 0 && n < maxRetries && !this.abortReason();
    if (!retry) {
      this.settle(e);
      return;
    }
    this.tries++;
    const backoff = 250 * 3 ** n * (0.8 + Math.random() * 0.4);
    const waitMs = Math.round(Math.min(5000, Math.max(backoff, retryAfter.get(e) ?? 0)));
    log.warn(
      { code: e.code, status: e.status, err: e.message, attempt: n + 1, waitMs },
      'model request failed before the first token; retrying',
    );
    this.arm('backoff', waitMs);
  }

  private begin(): void {
    this.started = true;
    // Checked here, not at creation: the request starts when the consumer first reads.
    const aborted = this.abortReason();
    if (aborted) {
      this.settle(aborted);
      return;
    }
    this.signal?.addEventListener('abort', this, { once: true });
    this.send();
  }

  private send(): void {
    const { request: req, client } = this;
    if (!req) return; // unreachable: retries stop at the first token, which drops the request
    const body: Record<string, unknown> = {
      model: req.model,
      messages: req.messages,
      stream: true,
      stream_options: { include_usage: true },
    };
    const maxTokens = req.maxTokens ?? client.maxTokens;
    if (maxTokens !== undefined) body.max_tokens = maxTokens;
    if (req.temperature !== undefined) body.temperature = req.temperature;
    this.timedOut = null;
    this.finishReason = null;
    this.usage = NO_USAGE;
    this.chars = 0;
    const a = new Attempt(this);
    this.attempt = a;
    this.arm('connect', client.connectTimeoutMs);
    client.dispatcher.dispatch(
      {
        origin: client.origin,
        path: client.path,
        method: 'POST',
        headers: client.headers,
        // Not a Buffer or a string: undici would keep it for the life of the response (see OnceBody).
        // (undici's types list no Blob, though its dispatch takes one.)
        body: new OnceBody(JSON.stringify(body)) as unknown as Dispatcher.DispatchOptions['body'],
      },
      a,
    );
  }

  /** The payloads a chunk completes (null: the end); null when the stream broke the decoder's bounds. */
  private decode(a: Attempt, chunk: Buffer | null): string[] | null {
    try {
      return chunk ? a.sse.push(chunk) : a.sse.end();
    } catch (err) {
      if (!(err instanceof SseTooLarge)) throw err;
      this.failed(
        new ModelError(`model stream sent ${err.message}`, 'MODEL_STREAM_ERROR', this.tokens === 0),
      );
      return null;
    }
  }

  /** One SSE payload; false once the stream is over ([DONE], or an error in the stream). */
  private payload(payload: string): boolean {
    if (payload.trim() === '[DONE]') {
      // Whatever follows [DONE] is read and dropped, so the connection returns to the pool.
      this.finish();
      return false;
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(payload) as Chunk;
    } catch {
      this.client.log.debug({ payload: payload.slice(0, 200) }, 'model sent a non-JSON event; skipped');
      return true;
    }
    let content: string | null;
    try {
      content = this.take(chunk);
    } catch (err) {
      this.failed(err);
      return false;
    }
    if (content !== null) {
      this.tokens++;
      this.request = null;
      this.deliver({ type: 'token', text: content });
    }
    return true;
  }

  /** The chunk's content delta (or null); throws the provider's in-stream error. */
  private take(chunk: Chunk): string | null {
    if (chunk.error) {
      const e = chunk.error;
      const code = typeof e === 'object' ? e.code : undefined;
      const retryable = this.tokens === 0 && (typeof code !== 'number' || isRetryableStatus(code));
      const message = typeof e === 'string' ? e : String(e.message ?? 'unknown error');
      throw new ModelError(`model stream error: ${message}`, 'MODEL_STREAM_ERROR', retryable);
    }
    // Groq reports usage under x_groq; OpenAI sends it in a last chunk whose choices are empty.
    const u = reportedUsage(chunk.usage ?? chunk.x_groq?.usage);
    if (u.prompt !== undefined || u.completion !== undefined) this.usage = u;
    for (const choice of chunk.choices ?? []) {
      if (typeof choice.finish_reason === 'string' && choice.finish_reason)
        this.finishReason = choice.finish_reason;
    }
    const content = chunk.choices?.[0]?.delta?.content;
    if (typeof content !== 'string' || content.length === 0) return null;
    // Only the length is kept (for the estimate when no usage comes): the producer holds the text.
    this.chars += content.length;
    return content;
  }

  private finish(): void {
    this.attempt = null;
    this.stopClock();
    const { prompt, completion } = this.usage;
    this.deliver({
      type: 'done',
      finishReason: this.finishReason ?? 'stop',
      usage: {
        prompt_tokens: prompt ?? this.promptEstimate,
        completion_tokens: completion ?? (this.chars ? Math.max(1, Math.ceil(this.chars / 4)) : 0),
        estimated: prompt === undefined || completion === undefined,
      },
    });
    this.settle(null);
  }

  private deliver(ev: ModelEvent): void {
    if (this.sink) {
      this.sink.modelEvent(ev);
      return;
    }
    const resolve = this.resolveNext;
    if (!resolve) {
      this.queue.push(ev);
      return;
    }
    this.resolveNext = null;
    this.rejectNext = null;
    resolve({ value: ev, done: false });
  }

  /** Why the stream was aborted (the request's signal, or abort()), or null. */
  private abortReason(): Error | null {
    if (this.abortedWith) return this.abortedWith;
    return this.signal?.aborted ? abortError(this.signal) : null;
  }

  /** Whatever went wrong, said as a ModelError (or the caller's AbortError). */
  private describe(err: unknown, status: number): Error {
    const aborted = this.abortReason();
    if (aborted) return aborted;
    const before = this.tokens === 0;
    const { timedOut } = this;
    if (timedOut) {
      const ms = timedOut === 'connect' ? this.client.connectTimeoutMs : this.client.idleTimeoutMs;
      // A connect timeout is a network failure (retried); a stalled stream is not worth waiting on twice.
      return new ModelError(
        `model ${timedOut} timeout after ${ms} ms`,
        'MODEL_TIMEOUT',
        before && timedOut === 'connect',
      );
    }
    if (err instanceof ModelError) return err;
    return status === 0
      ? new ModelError(`model request failed: ${causeOf(err)}`, 'MODEL_HTTP_ERROR', before)
      : new ModelError(`model stream broke: ${causeOf(err)}`, 'MODEL_STREAM_ERROR', before);
  }

  /** Closes the request in flight, if any; one not connected yet is closed when it connects. */
  private drop(): void {
    const a = this.attempt;
    this.attempt = null;
    this.stopClock();
    this.paused = false;
    a?.abort?.();
  }

  private settle(err: Error | null): void {
    this.settled = true;
    this.stopClock();
    this.signal?.removeEventListener('abort', this);
    const sink = this.sink;
    if (sink) {
      this.sink = null;
      sink.modelEnded(err);
      return;
    }
    const reject = this.rejectNext;
    const resolve = this.resolveNext;
    this.resolveNext = null;
    this.rejectNext = null;
    if (err) {
      if (reject) reject(err);
      else this.failure = err;
    } else resolve?.({ value: undefined, done: true });
  }

  private arm(kind: Clock, ms: number): void {
    clearTimeout(this.timer);
    this.clock = kind;
    this.timer = setTimeout(onClock, ms, this);
  }

  private startIdleClock(): void {
    if (this.clock === 'idle' && this.timer) this.timer.refresh();
    else this.arm('idle', this.client.idleTimeoutMs);
  }

  private stopClock(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.clock = null;
  }
}
