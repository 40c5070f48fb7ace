// The producer of one assistant reply: runs the pipeline, logs every event, checkpoints, and always finalises the row.

import type { Logger } from 'pino';
import { retryWithin } from '../../lib/async.js';
import { isOutage } from '../../lib/outage.js';
import { storableText } from '../../lib/text.js';
import { estimateTokens, type ModelEvent } from '../llm/provider.js';
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
import type { FinalStatus, StreamMeta } from './generation.repo.js';
import type { FinalOutcome, Pipeline, ReplyOptions, RoutedTurn, TurnInput } from './turn.js';
import type { ReplyWriter } from './writer.js';

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
  end(messageId: string): void;
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
  readonly done: Promise<GenerationOutcome>;
}

export interface ReplyIds {
  messageId: string;
  userMessageId: string;
  /** The assistant row's `created_at`: the `start` timestamp, live and rebuilt. */
  startedAt: Date | string;
}

export function startGeneration(
  deps: ProducerDeps,
  ids: ReplyIds,
  input: TurnInput,
  options: ReplyOptions = {},
): Generation {
  const entries: StreamEntry[] = [];
  const metrics = deps.metrics;
  const startedAt = performance.now();
  metrics?.turnStarted();
  const prelude: PreludeEvent[] = [];
  let waiters: Array<() => void> = [];
  let ended = false;
  let stored: boolean | null = null;
  let offset = 0;
  const controller = new AbortController();
  let abortReason: AbortReason | null = null;
  const { messageId } = ids;

  const wake = () => {
    if (waiters.length === 0) return;
    const w = waiters;
    waiters = [];
    for (const fn of w) fn();
  };
  const append = (event: ReplyEvent, addedChars = 0) => {
    offset += addedChars;
    const entry: StreamEntry = {
      id: cursorId(offset, entries.length + 1),
      seq: entries.length + 1,
      offset,
      event,
    };
    entries.push(entry);
    deps.mirror?.append(messageId, entry);
    wake();
  };

  // The start event is in the log before the model is called: the response can flush it at once.
  append(
    startEvent({
      sessionId: input.sessionId,
      messageId,
      userMessageId: ids.userMessageId,
      startedAt: ids.startedAt,
    }),
  );

  // The producer's own view of the turn, folded from the pipeline's events.
  const state: Partial<RoutedTurn> & { model?: string; completeExtra: CompleteExtra } = { completeExtra: {} };
  const streamMeta = (): StreamMeta => ({
    agent_echo_id: state.agent?.echoId ?? state.agent?.id ?? 'abaporu',
    prelude,
    suggested_actions: state.suggestedActions ?? [],
    complete_extra: { ...state.completeExtra, ...options.completeExtra },
  });
  let content = '';
  const abortWith = (reason: AbortReason) => {
    if (ended || controller.signal.aborted) return;
    abortReason = reason;
    controller.abort(Object.assign(new Error(reason), { name: 'AbortError' }));
  };

  // Checkpoints are timer-driven (the writer's one timer for all replies), so database writes
  // depend on elapsed time, never on chunk count.
  const untrack = deps.writer.track({
    messageId,
    content: () => content,
    meta: () =>
      state.agent
        ? { agentId: state.agent.id, agentName: state.agent.name, stream: streamMeta() }
        : undefined,
    answered(row) {
      // A stop recorded in the row (its pub/sub message may have been lost), or a row a stop
      // already closed because this producer looked dead: either way the reply stops here.
      if (row.stopRequested || row.status === 'stopped') abortWith('stopped');
    },
  });

  const run = async (): Promise<GenerationOutcome> => {
    const chunker = createChunker();
    const emit = (raw: string) => {
      // The chunker cuts after whitespace, so a surrogate pair is never split across two chunks.
      const text = storableText(raw);
      if (!text) return;
      if (!content) metrics?.firstChunk((performance.now() - startedAt) / 1000);
      content += text;
      append(chunkEvent(text, state.agent?.echoId ?? 'abaporu'), text.length);
    };
    let status: FinalStatus = 'completed';
    let finishReason = 'stop';
    let usage: Usage | null = null;
    let errorCode: string | null = null;
    const onModel = (ev: ModelEvent) => {
      if (ev.type === 'token') emit(chunker.push(ev.text));
      else {
        finishReason = ev.finishReason;
        usage = ev.usage;
      }
    };
    try {
      let model: AsyncIterable<ModelEvent> | null = null;
      for await (const ev of deps.pipeline(input, controller.signal)) {
        if (ev.type === 'event') {
          prelude.push(ev.event);
          append(ev.event);
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
        } else onModel(ev);
      }
      // A stream that is also synchronously iterable (the offline agent) is read without a promise per token.
      if (model && Symbol.iterator in model) for (const m of model as Iterable<ModelEvent>) onModel(m);
      else if (model) for await (const m of model) onModel(m);
      if (controller.signal.aborted) throw controller.signal.reason;
    } catch (err) {
      if (abortReason) {
        status = abortReason;
        finishReason = abortReason;
      } else {
        status = 'failed';
        finishReason = 'error';
        errorCode = (err as { code?: string }).code ?? 'GENERATION_FAILED';
        deps.log.warn({ err, messageId }, 'generation failed');
      }
    }
    // Whatever was held back at a word boundary is part of the reply, on every path.
    emit(chunker.flush());

    const outcome: FinalOutcome = {
      messageId,
      userMessageId: ids.userMessageId,
      sessionId: input.sessionId,
      userId: input.userId,
      content,
      status,
      finishReason,
      agentId: state.agent?.id ?? 'abaporu',
      agentName: state.agent?.name ?? 'Abaporu',
      intent: state.intent?.intent ?? null,
      confidence: state.intent?.confidence ?? null,
      usage: usage ?? {
        prompt_tokens: estimateTokens(input.message),
        completion_tokens: content ? estimateTokens(content) : 0,
        estimated: true,
      },
    };
    const meta = streamMeta();
    let persisted = false;
    let extra: CompleteExtra = {};
    await untrack();
    const write = {
      ...outcome,
      model: state.model ?? 'unknown',
      metadata: { ...(errorCode ? { error_code: errorCode } : {}), stream: meta },
    };
    const hook = options.onFinalize;
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
    stored = persisted;
    append(
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
    ended = true;
    metrics?.turnEnded(status);
    deps.mirror?.end(messageId);
    wake();

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
  };

  const done = run();
  return {
    messageId,
    sessionId: input.sessionId,
    userId: input.userId,
    entries,
    get ended() {
      return ended;
    },
    get stored() {
      return stored;
    },
    onChange(fn) {
      if (ended) fn();
      else waiters.push(fn);
    },
    abort: abortWith,
    done,
  };
}
