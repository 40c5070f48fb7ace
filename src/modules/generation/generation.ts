// A running assistant reply: runs the pipeline, logs every event, checkpoints, and always finalises the row.
import type { Logger } from 'pino';
import type { Db } from '../../db/client.js';
import type { PipelineEvent, TurnInput, TurnState } from '../agents/pipeline.js';
import { estimateTokens, type ModelEvent, type ModelUsage } from '../llm/provider.js';
import type { TurnMetrics } from '../metrics/metrics.js';
import { createChunker } from './chunker.js';
import { completeEvent, cursorId, errorEvent, type GenEvent, type StreamEntry } from './events.js';
import { checkpoint, type FinalStatus, type FinalWrite, finalize } from './generation.repo.js';

export type AbortReason = 'stopped' | 'interrupted';

/** Where events are mirrored for other instances (a Redis Stream); optional. */
export interface EventMirror {
  append(messageId: string, entry: StreamEntry): void;
  end(messageId: string): void;
}

export interface GenerationDeps {
  db: Db;
  log: Logger;
  checkpointMs: number;
  heartbeatMs: number;
  mirror: EventMirror | null;
  /** Lifecycle counters (started, outcome, first chunk, checkpoints); optional. */
  metrics?: TurnMetrics;
  pipeline(input: TurnInput, state: TurnState, signal: AbortSignal): AsyncIterable<PipelineEvent>;
  /** Called after the final write (memory, metrics); errors are logged, never thrown. */
  onFinished?(outcome: GenerationOutcome, input: TurnInput): Promise<void> | void;
}

/** What the final write stored, plus what the turn's answer needs. */
export interface GenerationOutcome extends Omit<FinalWrite, 'model' | 'metadata'> {
  suggestedActions: string[];
  persisted: boolean;
}

export interface Generation {
  readonly messageId: string;
  readonly sessionId: string;
  readonly userId: string | null;
  readonly entries: readonly StreamEntry[];
  readonly ended: boolean;
  /** Resolves on the next appended event (or the end). */
  changed(): Promise<void>;
  abort(reason: AbortReason): void;
  readonly done: Promise<GenerationOutcome>;
}

export function startGeneration(
  deps: GenerationDeps,
  ids: { messageId: string; userMessageId: string },
  input: TurnInput,
): Generation {
  const entries: StreamEntry[] = [];
  const metrics = deps.metrics;
  const startedAt = performance.now();
  metrics?.turnStarted();
  let waiters: Array<() => void> = [];
  let ended = false;
  let offset = 0;
  const controller = new AbortController();
  let abortReason: AbortReason | null = null;

  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const fn of w) fn();
  };
  const append = (event: GenEvent, addedChars = 0) => {
    offset += addedChars;
    const entry: StreamEntry = {
      id: cursorId(offset, entries.length + 1),
      seq: entries.length + 1,
      offset,
      event,
    };
    entries.push(entry);
    deps.mirror?.append(ids.messageId, entry);
    wake();
  };

  // The start event is in the log before the model is called: the response can flush it at once.
  append({
    type: 'start',
    session_id: input.sessionId,
    message_id: ids.messageId,
    user_message_id: ids.userMessageId,
    timestamp: new Date().toISOString(),
  });

  const state: TurnState = { completeExtra: {}, suggestedActions: [] };
  let content = '';
  let persistedChars = 0;
  let lastBeat = Date.now();
  let writes: Promise<unknown> = Promise.resolve();

  // Checkpoints are timer-driven, so database writes depend on elapsed time, never on chunk count.
  const tick = setInterval(
    () => {
      const grown = content.length !== persistedChars;
      if (!grown && Date.now() - lastBeat < deps.heartbeatMs) return;
      const snapshot = grown ? content : null;
      persistedChars = content.length;
      lastBeat = Date.now();
      writes = writes
        .then(() => checkpoint(deps.db, ids.messageId, snapshot))
        .then(
          () => metrics?.checkpoint('ok'),
          (err) => {
            metrics?.checkpoint('failed');
            deps.log.warn({ err, messageId: ids.messageId }, 'checkpoint failed');
          },
        );
    },
    Math.min(deps.checkpointMs, deps.heartbeatMs),
  );
  tick.unref();

  const run = async (): Promise<GenerationOutcome> => {
    const chunker = createChunker();
    const emit = (text: string) => {
      if (!text) return;
      if (!content) metrics?.firstChunk((performance.now() - startedAt) / 1000);
      content += text;
      append({ type: 'chunk', content: text, agent_id: state.agent?.echoId ?? 'abaporu' }, text.length);
    };
    let status: FinalStatus = 'completed';
    let finishReason = 'stop';
    let usage: ModelUsage | null = null;
    let errorCode: string | null = null;
    const onModel = (ev: ModelEvent) => {
      if (ev.type === 'token') emit(chunker.push(ev.text));
      else {
        finishReason = ev.finishReason;
        usage = ev.usage;
      }
    };
    try {
      for await (const ev of deps.pipeline(input, state, controller.signal)) {
        if (ev.type === 'event') append(ev.event);
        else if (ev.type === 'model') {
          // A stream that is also synchronously iterable (the offline agent) is read without a promise per token.
          if (Symbol.iterator in ev.stream) for (const m of ev.stream as Iterable<ModelEvent>) onModel(m);
          else for await (const m of ev.stream) onModel(m);
        } else onModel(ev);
      }
      if (controller.signal.aborted) throw controller.signal.reason;
    } catch (err) {
      if (abortReason) {
        status = abortReason;
        finishReason = abortReason;
      } else {
        status = 'failed';
        finishReason = 'error';
        errorCode = (err as { code?: string }).code ?? 'GENERATION_FAILED';
        deps.log.warn({ err, messageId: ids.messageId }, 'generation failed');
      }
    }
    // Whatever was held back at a word boundary is part of the reply, on every path.
    emit(chunker.flush());
    clearInterval(tick);

    const agentId = state.agent?.id ?? 'abaporu';
    const agentName = state.agent?.name ?? 'Abaporu';
    const finalUsage = usage ?? {
      prompt_tokens: estimateTokens(input.message),
      completion_tokens: content ? estimateTokens(content) : 0,
      estimated: true,
    };
    const result = {
      messageId: ids.messageId,
      content,
      status,
      finishReason,
      agentId,
      agentName,
      intent: state.intent?.intent ?? null,
      confidence: state.intent?.confidence ?? null,
      usage: finalUsage,
    };
    let persisted = false;
    await writes;
    try {
      persisted = await finalize(deps.db, {
        ...result,
        model: state.model ?? 'unknown',
        metadata: errorCode ? { error_code: errorCode } : {},
      });
    } catch (err) {
      // The row keeps its last checkpoint; the sweeper will mark it interrupted.
      deps.log.error({ err, messageId: ids.messageId }, 'final write failed');
      metrics?.finalWriteFailed();
      status = 'failed';
      errorCode = 'PERSIST_FAILED';
    }
    append(
      status === 'completed' || status === 'stopped'
        ? completeEvent({
            sessionId: input.sessionId,
            messageId: ids.messageId,
            agentId: state.agent?.echoId ?? agentId,
            agentName,
            finishReason,
            suggestedActions: state.suggestedActions,
            usage: finalUsage,
            extra: state.completeExtra,
          })
        : errorEvent(status, errorCode ?? undefined),
    );
    ended = true;
    metrics?.turnEnded(status);
    deps.mirror?.end(ids.messageId);
    wake();

    const outcome: GenerationOutcome = {
      ...result,
      status,
      suggestedActions: state.suggestedActions,
      persisted,
    };
    if (deps.onFinished) {
      try {
        await deps.onFinished(outcome, input);
      } catch (err) {
        deps.log.warn({ err }, 'post-generation hook failed');
      }
    }
    return outcome;
  };

  const done = run();
  return {
    messageId: ids.messageId,
    sessionId: input.sessionId,
    userId: input.userId,
    entries,
    get ended() {
      return ended;
    },
    changed() {
      if (ended) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    abort(reason) {
      if (ended || controller.signal.aborted) return;
      abortReason = reason;
      controller.abort(Object.assign(new Error(reason), { name: 'AbortError' }));
    },
    done,
  };
}
