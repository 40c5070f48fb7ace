// The producer of one assistant reply: runs the pipeline, logs every event, checkpoints, and always finalises the row.

import type { Logger } from 'pino';
import { retryWithin } from '../../lib/async.js';
import { isOutage } from '../../lib/outage.js';
import { storableText } from '../../lib/text.js';
import {
  estimateTokens,
  isPushing,
  type ModelEvent,
  type ModelSink,
  type PushingModelStream,
} from '../llm/provider.js';
import type { TurnMetrics } from '../metrics/metrics.js';
import {
  type CompleteExtra,
  chunkEvent,
  completeEvent,
  createChunker,
  cursorId,
  errorEvent,
  type PreludeEvent,
  type ReplyEvent,
  type StreamEntry,
  startEvent,
  type Usage,
} from './events.js';
import type { CheckpointAnswer, FinalStatus, StreamMeta } from './generation.repo.js';
import type { FinalOutcome, Pipeline, ReplyOptions, RoutedTurn, TurnInput } from './turn.js';
import type { LiveReply, ReplyWriter } from './writer.js';
import type { CheckpointRow } from './writer.repo.js';

export type AbortReason = 'stopped' | 'interrupted';

export type {
  FinalizeHook,
  FinalOutcome,
  Pipeline,
  PipelineEvent,
  ReplyOptions,
  RoutedTurn,
  TurnInput,
} from './turn.js';

export interface GenerationOutcome extends FinalOutcome {
  suggestedActions: string[];
  /** False when the row was already final (or the write failed). */
  persisted: boolean;
}

export interface ProducerDeps {
  log: Logger;
  /** Writes the reply's checkpoints, heartbeats and final write, batched with every other reply's. */
  writer: ReplyWriter;
  /** How long the final write is retried while the database is unreachable (a restart, a failover). */
  finalWriteRetryMs: number;
  mirror: EventMirror | null;
  /** Lifecycle counters (started, outcome, first chunk, checkpoints, final-write retries); optional. */
  metrics?: TurnMetrics;
  pipeline: Pipeline;
  /** Called after the final write (memory, metrics); errors are logged, never thrown. */
  onFinished?(outcome: GenerationOutcome, input: TurnInput): Promise<void> | void;
}

/** Where events are mirrored for other instances (a Redis Stream); optional. */
export interface EventMirror {
  append(messageId: string, entry: StreamEntry): void;
}

export interface Generation {
  readonly messageId: string;
  readonly sessionId: string;
  readonly userId: string | null;
  readonly entries: readonly StreamEntry[];
  readonly ended: boolean;
  /**
   * Whether the final write stored this log's text: null while running, false when it failed or
   * the row was already final. Only a stored log may be replayed from memory; otherwise the row is.
   */
  readonly stored: boolean | null;
  /** Calls `fn` once, on the next appended event or the end (at once if it already ended). */
  onChange(fn: () => void): void;
  abort(reason: AbortReason): void;
  /** Settles when the reply is done (after its final write and hook). Made on first use. */
  readonly done: Promise<GenerationOutcome>;
  /**
   * Calls `fn` with this reply once it is done, whatever its outcome (at once if it is): what a
   * held reply's owners (the registry, the turn's slot) wait on, without a promise each.
   */
  whenDone(fn: (gen: Generation) => void): void;
}

export interface ReplyIds {
  messageId: string;
  userMessageId: string;
  /** The assistant row's `created_at`: the `start` timestamp, live and rebuilt. */
  startedAt: Date | string;
}

// Shared defaults: an empty object of its own per reply is ~56 bytes held for the reply's life.
const NO_OPTIONS: ReplyOptions = Object.freeze({});
const NO_EXTRA: CompleteExtra = Object.freeze({});

export function startGeneration(
  deps: ProducerDeps,
  ids: ReplyIds,
  input: TurnInput,
  options: ReplyOptions = NO_OPTIONS,
): Generation {
  return new LiveGeneration(deps, ids, input, options);
}

/**
 * One running reply. A class rather than closures over locals: a held reply costs one object and
 * its fields, where the closure form kept ~15 functions, their contexts and a dictionary-mode
 * result object (its getters) per reply. It is also the writer's view of the reply (LiveReply).
 */
class LiveGeneration implements Generation, LiveReply, ModelSink {
  readonly messageId: string;
  readonly sessionId: string;
  readonly userId: string | null;
  readonly entries: StreamEntry[] = [];
  ended = false;
  stored: boolean | null = null;
  private readonly deps: ProducerDeps;
  private readonly userMessageId: string;
  private readonly input: TurnInput;
  private readonly options: ReplyOptions;
  private readonly startedAt = performance.now();
  private prelude: PreludeEvent[] = [];
  /**
   * Who waits for the next event: almost always one subscriber, so one slot, and an array only
   * for more (an array's first push reserves room for 17).
   */
  private waiter: (() => void) | null = null;
  private moreWaiters: Array<() => void> | null = null;
  private offset = 0;
  /** Aborts the pipeline and the model; dropped once a pushing model stream takes over (see run). */
  private controller: AbortController | null = new AbortController();
  /** The model stream piped into this reply: aborted directly. */
  private model: PushingModelStream | null = null;
  private abortReason: AbortReason | null = null;
  /** The reply's text so far. */
  private text = '';
  private readonly chunker = createChunker();
  private finishReason = 'stop';
  private usage: Usage | null = null;
  // The producer's own view of the turn, folded from the pipeline's events.
  private readonly state: Partial<RoutedTurn> & { model?: string; completeExtra: CompleteExtra } = {
    completeExtra: NO_EXTRA,
  };
  /**
   * The end, once reached: the outcome, or what finish() threw. Who waits for it is a function or
   * two (whenDone), and a promise only for a caller that asks for `done`: a held reply keeps no
   * promise, resolving functions or reactions.
   */
  private settled: { outcome: GenerationOutcome } | { err: unknown } | null = null;
  private doneFn: ((gen: Generation) => void) | null = null;
  private moreDoneFns: Array<(gen: Generation) => void> | null = null;
  private donePromise: Promise<GenerationOutcome> | null = null;
  private resolveDone: ((outcome: GenerationOutcome) => void) | null = null;
  private rejectDone: ((err: unknown) => void) | null = null;
  /** What went wrong inside modelEvent, if anything did. */
  private pushFailure: { err: unknown } | null = null;

  constructor(deps: ProducerDeps, ids: ReplyIds, input: TurnInput, options: ReplyOptions) {
    this.deps = deps;
    // Only this id is needed after the start event (which carries the rest).
    this.userMessageId = ids.userMessageId;
    this.input = input;
    this.options = options;
    this.messageId = ids.messageId;
    this.sessionId = input.sessionId;
    this.userId = input.userId;
    deps.metrics?.turnStarted();
    // The start event is in the log before the model is called: the response can flush it at once.
    this.append(
      startEvent({
        sessionId: input.sessionId,
        messageId: ids.messageId,
        userMessageId: ids.userMessageId,
        startedAt: ids.startedAt,
      }),
    );
    // Checkpoints are timer-driven (the writer's one timer for all replies), so database writes
    // depend on elapsed time, never on chunk count.
    deps.writer.track(this);
    void this.run();
  }

  get done(): Promise<GenerationOutcome> {
    if (!this.donePromise) {
      const s = this.settled;
      if (!s)
        this.donePromise = new Promise((resolve, reject) => {
          this.resolveDone = resolve;
          this.rejectDone = reject;
        });
      else this.donePromise = 'outcome' in s ? Promise.resolve(s.outcome) : Promise.reject(s.err);
    }
    return this.donePromise;
  }

  whenDone(fn: (gen: Generation) => void): void {
    if (this.settled) fn(this);
    else if (!this.doneFn) this.doneFn = fn;
    else if (this.moreDoneFns) this.moreDoneFns.push(fn);
    else this.moreDoneFns = [fn];
  }

  private settle(s: { outcome: GenerationOutcome } | { err: unknown }): void {
    this.settled = s;
    if (this.resolveDone) {
      if ('outcome' in s) this.resolveDone(s.outcome);
      else this.rejectDone!(s.err);
      this.resolveDone = null;
      this.rejectDone = null;
    }
    const first = this.doneFn;
    const more = this.moreDoneFns;
    this.doneFn = null;
    this.moreDoneFns = null;
    if (first) this.callDone(first);
    if (more) for (const fn of more) this.callDone(fn);
  }

  private callDone(fn: (gen: Generation) => void): void {
    try {
      fn(this);
    } catch (err) {
      this.deps.log.error({ err, messageId: this.messageId }, 'a reply-done callback failed');
    }
  }

  /** Calls `fn` once, on the next appended event or the end (at once if it already ended). */
  onChange(fn: () => void): void {
    if (this.ended) fn();
    else if (!this.waiter) this.waiter = fn;
    else if (this.moreWaiters) this.moreWaiters.push(fn);
    else this.moreWaiters = [fn];
  }

  abort(reason: AbortReason): void {
    if (this.ended || this.abortReason || this.pushFailure) return;
    this.abortReason = reason;
    this.abortWith(Object.assign(new Error(reason), { name: 'AbortError' }));
  }

  private abortWith(err: Error | unknown): void {
    if (this.model) this.model.abort(err instanceof Error ? err : new Error(String(err)));
    else this.controller?.abort(err);
  }

  // LiveReply: what the writer checkpoints.
  content(): string {
    return this.text;
  }

  meta(): CheckpointRow['meta'] | undefined {
    const agent = this.state.agent;
    return agent ? { agentId: agent.id, agentName: agent.name, stream: this.streamMeta() } : undefined;
  }

  answered(row: CheckpointAnswer): void {
    // A stop recorded in the row (its pub/sub message may have been lost), or a row a stop
    // already closed because this producer looked dead: either way the reply stops here.
    if (row.stopRequested || row.status === 'stopped') this.abort('stopped');
  }

  private wake(): void {
    const first = this.waiter;
    const more = this.moreWaiters;
    this.waiter = null;
    this.moreWaiters = null;
    first?.();
    if (more) for (const fn of more) fn();
  }

  private append(event: ReplyEvent, addedChars = 0): void {
    this.offset += addedChars;
    const { entries } = this;
    const entry: StreamEntry = {
      id: cursorId(this.offset, entries.length + 1),
      seq: entries.length + 1,
      offset: this.offset,
      event,
    };
    entries.push(entry);
    this.deps.mirror?.append(this.messageId, entry);
    this.wake();
  }

  private streamMeta(): StreamMeta {
    const { state } = this;
    return {
      agent_echo_id: state.agent?.echoId ?? state.agent?.id ?? 'abaporu',
      prelude: this.prelude,
      suggested_actions: state.suggestedActions ?? [],
      complete_extra: { ...state.completeExtra, ...this.options.completeExtra },
    };
  }

  private emit(raw: string): void {
    // The chunker cuts after whitespace, so a surrogate pair is never split across two chunks.
    const text = storableText(raw);
    if (!text) return;
    if (!this.text) this.deps.metrics?.firstChunk((performance.now() - this.startedAt) / 1000);
    this.text += text;
    this.append(chunkEvent(text, this.state.agent?.echoId ?? 'abaporu'), text.length);
  }

  private onModel(ev: ModelEvent): void {
    if (ev.type === 'token') this.emit(this.chunker.push(ev.text));
    else {
      this.finishReason = ev.finishReason;
      this.usage = ev.usage;
    }
  }

  /**
   * The pipeline, then the model's stream. A stream that pushes (the HTTP client) is handed this
   * reply as its sink and run() returns: a reply waiting minutes for its tokens holds no suspended
   * function. Either way the reply ends in finish().
   */
  private async run(): Promise<void> {
    const { deps, input, state } = this;
    const signal = this.controller!.signal;
    try {
      let model: AsyncIterable<ModelEvent> | null = null;
      for await (const ev of deps.pipeline(input, signal)) {
        if (ev.type === 'event') {
          this.prelude.push(ev.event);
          this.append(ev.event);
        } else if (ev.type === 'routed') {
          state.agent = ev.agent;
          state.intent = ev.intent;
          state.suggestedActions = ev.suggestedActions;
        } else if (ev.type === 'extra') {
          state.completeExtra = { ...state.completeExtra, ...ev.fields };
        } else if (ev.type === 'model') {
          state.model = ev.model;
          model = ev.stream;
          // The model's stream is the pipeline's last event: leaving the loop ends the pipeline's
          // generator, which would otherwise stay suspended for the whole reply holding its locals
          // (prompt, history, memory).
          break;
        } else this.onModel(ev);
      }
      // Kept for the reply's life (its metadata): at its size, not the room its pushes reserved.
      this.prelude = this.prelude.slice();
      if (model && isPushing(model)) {
        // An abort until now is in the signal, which the stream reads when it starts.
        this.model = model;
        model.pipe(this);
        // A reply that waits minutes for tokens holds no AbortController (two listener maps).
        this.controller = null;
        return;
      }
      // A stream that is also synchronously iterable (the offline agent) is read without a promise per token.
      if (model && Symbol.iterator in model) for (const m of model as Iterable<ModelEvent>) this.onModel(m);
      else if (model) for await (const m of model) this.onModel(m);
      this.modelDone(null);
    } catch (err) {
      this.modelDone({ err });
    }
  }

  // ModelSink: a pushing stream's events, called from the HTTP client's callbacks.
  modelEvent(ev: ModelEvent): void {
    try {
      this.onModel(ev);
    } catch (err) {
      // Not thrown into the HTTP client: the model request is closed and the reply fails with it.
      this.pushFailure ??= { err };
      this.abortWith(err);
    }
  }

  modelEnded(err: Error | null): void {
    this.modelDone(err ? { err } : null);
  }

  /** The model is done (or never started): an abort that ended it quietly still counts as one. */
  private modelDone(failure: { err: unknown } | null): void {
    const signal = this.controller?.signal;
    const f = this.pushFailure ?? failure ?? (signal?.aborted ? { err: signal.reason as unknown } : null);
    this.finish(f).then(
      (outcome) => this.settle({ outcome }),
      (err: unknown) => this.settle({ err }),
    );
  }

  /** Everything after the model: the status, the final write, the terminal event, the hook. */
  private async finish(failure: { err: unknown } | null): Promise<GenerationOutcome> {
    const { deps, input, state, messageId, userMessageId } = this;
    const metrics = deps.metrics;
    let status: FinalStatus = 'completed';
    let errorCode: string | null = null;
    if (failure) {
      const { err } = failure;
      if (this.abortReason) {
        status = this.abortReason;
        this.finishReason = this.abortReason;
      } else {
        status = 'failed';
        this.finishReason = 'error';
        errorCode = (err as { code?: string }).code ?? 'GENERATION_FAILED';
        deps.log.warn({ err, messageId }, 'generation failed');
      }
    }
    // Whatever was held back at a word boundary is part of the reply, on every path.
    this.emit(this.chunker.flush());

    const content = this.text;
    const finishReason = this.finishReason;
    const outcome: FinalOutcome = {
      messageId,
      userMessageId,
      sessionId: input.sessionId,
      userId: input.userId,
      content,
      status,
      finishReason,
      agentId: state.agent?.id ?? 'abaporu',
      agentName: state.agent?.name ?? 'Abaporu',
      intent: state.intent?.intent ?? null,
      confidence: state.intent?.confidence ?? null,
      usage: this.usage ?? {
        prompt_tokens: estimateTokens(input.message),
        completion_tokens: content ? estimateTokens(content) : 0,
        estimated: true,
      },
    };
    const meta = this.streamMeta();
    let persisted = false;
    let extra: CompleteExtra = {};
    await deps.writer.untrack(this);
    const write = {
      ...outcome,
      model: state.model ?? 'unknown',
      metadata: { ...(errorCode ? { error_code: errorCode } : {}), stream: meta },
    };
    const hook = this.options.onFinalize;
    const finalizeOnce = async () => {
      try {
        return await deps.writer.finalize(write, hook ? (tx) => hook(tx, outcome) : undefined);
      } catch (err) {
        if (!hook || isOutage(err)) throw err;
        // An extension's failure rolls back its own statements; the reply itself is still stored.
        deps.log.error({ err, messageId }, 'finalize hook failed; storing the reply without it');
        metrics?.finalWriteRetry();
        return deps.writer.finalize(write);
      }
    };
    try {
      // A database restarting under a finished reply costs a few seconds, not the reply: the write
      // is retried while the outage lasts (bounded), and `complete` waits for it to commit.
      const final = await retryWithin(finalizeOnce, isOutage, {
        windowMs: deps.finalWriteRetryMs,
        onRetry: (err, attempt) => {
          metrics?.finalWriteRetry();
          deps.log.warn({ err: (err as Error).message, messageId, attempt }, 'final write retried');
        },
      });
      persisted = final.persisted;
      extra = final.extra;
    } catch (err) {
      // The row keeps its last checkpoint; the sweeper will mark it interrupted.
      deps.log.error({ err, messageId }, 'final write failed');
      metrics?.finalWriteFailed();
      status = 'failed';
      errorCode = 'PERSIST_FAILED';
    }
    this.stored = persisted;
    this.append(
      status === 'completed' || status === 'stopped'
        ? completeEvent({
            sessionId: input.sessionId,
            messageId,
            agentId: meta.agent_echo_id,
            agentName: outcome.agentName,
            finishReason,
            suggestedActions: state.suggestedActions ?? [],
            usage: outcome.usage,
            extra: { ...meta.complete_extra, ...extra },
          })
        : errorEvent(status, errorCode ?? undefined),
    );
    this.ended = true;
    metrics?.turnEnded(status);
    this.wake();

    const result: GenerationOutcome = {
      ...outcome,
      status,
      suggestedActions: state.suggestedActions ?? [],
      persisted,
    };
    if (deps.onFinished) {
      try {
        await deps.onFinished(result, input);
      } catch (err) {
        deps.log.warn({ err }, 'post-generation hook failed');
      }
    }
    return result;
  }
}
