// The replies service: one owner for an assistant reply from the persisted turn to its terminal status.
import type { Logger } from 'pino';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { Cursor, StreamEntry } from './events.js';
import {
  type Generation,
  type ProducerDeps,
  type ReplyIds,
  type ReplyOptions,
  startGeneration,
  type TurnInput,
} from './generation.js';
import {
  activeReplyOf,
  closeOrphan,
  getReply,
  producerAlive,
  type ReplyRow,
  recordStop,
  toMessage,
} from './generation.repo.js';
import type { GenerationRegistry } from './registry.js';
import { isStale, storedEntries, withFallback } from './replay.js';

/** Cross-instance pieces (Redis); null on a single instance with in-process stores. */
export interface RemoteGenerations {
  /** Entries from the shared log, or null when it has none for this message. */
  entries(
    messageId: string,
    after: Cursor | null,
    signal: AbortSignal,
  ): Promise<AsyncIterable<StreamEntry> | null>;
  /** Asks whichever instance runs the generation to stop it. */
  requestStop(messageId: string): Promise<void>;
  /** A dead producer's text from its whole log, when that extends `stored`; else null. */
  recoverText(messageId: string, stored: string): Promise<string | null>;
}

/** Who asks: a verified user, or anonymous (null). */
export interface ReplyCaller {
  userId: string | null;
}

/**
 * A reply's entries after a cursor, in batches: everything available at one wake-up comes as one
 * array, so an encoder can write a burst in one socket write. Ends after the terminal event.
 */
export type ReplyStream = AsyncIterable<readonly StreamEntry[]>;

/** Where a piped subscription delivers the reply (see Subscription.pipe). */
export interface ReplySink {
  /** One batch; false when the client is behind: nothing more comes until the subscription's `resume()`. */
  push(batch: readonly StreamEntry[]): boolean;
  /** The stream ended: after the reply's terminal event, or at close(). */
  end(): void;
  /** Reading the reply failed midway; the stream ends. */
  fail(err: unknown): void;
}

/** A subscriber's stream of a reply: iterated, or piped to a sink (one or the other). */
export interface Subscription extends ReplyStream {
  /** The subscriber went away: the stream ends at once, not at the reply's next event. */
  close(): void;
  /** Delivers the reply to `sink` as it comes. */
  pipe(sink: ReplySink): void;
  /** The sink caught up after a `push` that returned false. */
  resume(): void;
}

export interface SubscribeOptions {
  /** The caller just started or attached to this turn: ownership is already established. */
  verified?: boolean;
}

export interface RepliesDeps {
  db: Db;
  log: Logger;
  registry: GenerationRegistry;
  remote: RemoteGenerations | null;
  producer: Omit<ProducerDeps, 'log'>;
  /** A streaming row whose producer has not beaten for this long is dead (same rule as the sweeper). */
  staleAfterMs: number;
}

const UUID = /^[0-9a-f-]{36}$/i;

type Batch = IteratorResult<readonly StreamEntry[]>;
const END: Batch = { value: undefined, done: true };

// One function for every stream's deferred delivery (a stream passes itself): no closure per stream.
const deliverDue = (s: LocalReplyStream) => s.deliverDue();

/**
 * This instance's log of a reply, from a cursor: everything available at one wake-up comes as one
 * batch; ends after the terminal event, or at once on close(). A class rather than an async
 * generator and an AbortController: a held subscriber is one object, not a generator, its
 * registers, two closures and a signal with its listener maps.
 */
class LocalReplyStream implements Subscription, AsyncIterableIterator<readonly StreamEntry[]> {
  /** The next entry to send; placed at the first read, as a generator's body would start. */
  private i = -1;
  private finished = false;
  private pending: ((r: Batch) => void) | null = null;
  /** Piped: where batches go, called from the reply's wake-up (no promise per wait). */
  private sink: ReplySink | null = null;
  private paused = false;
  /** A piped delivery is due on the next tick: a burst of events (a whole offline answer) is one batch. */
  private due = false;
  private readonly wake = () => this.settle();

  constructor(
    private readonly gen: Generation,
    private readonly after: Cursor | null,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<Batch> {
    const now = this.step();
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => {
      this.pending = resolve;
      this.gen.onChange(this.wake);
    });
  }

  return(): Promise<Batch> {
    this.close();
    return Promise.resolve(END);
  }

  close(): void {
    const resolve = this.pending;
    const sink = this.sink;
    this.pending = null;
    this.sink = null;
    this.finished = true;
    resolve?.(END);
    sink?.end();
  }

  pipe(sink: ReplySink): void {
    this.sink = sink;
    this.deliver(sink);
  }

  resume(): void {
    if (!this.paused || !this.sink) return;
    this.paused = false;
    this.deliver(this.sink);
  }

  /** Pushes what there is; then waits for the reply's next event, the sink to catch up, or ends. */
  private deliver(sink: ReplySink): void {
    for (;;) {
      const now = this.step();
      if (!now) {
        this.gen.onChange(this.wake);
        return;
      }
      if (now.done) {
        this.sink = null;
        sink.end();
        return;
      }
      if (!sink.push(now.value)) {
        // The sink may have closed this stream while taking the batch.
        if (this.sink) this.paused = true;
        return;
      }
    }
  }

  /** The next batch, the end, or null when it must wait for the reply's next event. */
  private step(): Batch | null {
    if (this.finished) return END;
    const { entries } = this.gen;
    if (this.i < 0) this.i = this.after ? Math.min(this.after.seq, entries.length) : 0;
    if (this.i < entries.length) {
      const batch = entries.slice(this.i);
      this.i += batch.length;
      return { value: batch, done: false };
    }
    if (!this.gen.ended) return null;
    this.finished = true;
    return END;
  }

  /** The deferred delivery of a piped stream (see settle). */
  deliverDue(): void {
    this.due = false;
    if (this.sink && !this.paused) this.deliver(this.sink);
  }

  private settle(): void {
    if (this.sink) {
      // Woken from inside the producer's append: what it appends in the same burst goes out with
      // this event, as one batch (one framing, one write), not one batch per event.
      if (!this.due) {
        this.due = true;
        process.nextTick(deliverDue, this);
      }
      return;
    }
    const resolve = this.pending;
    if (!resolve) return;
    const now = this.step();
    if (!now) {
      this.gen.onChange(this.wake);
      return;
    }
    this.pending = null;
    resolve(now);
  }
}

/**
 * A reply read from the shared log or the row (another instance's, or a finished one): iterated,
 * or piped by a loop of its own. Rarer than a live local reply, so its few promises are fine.
 */
class IteratedReplyStream implements Subscription {
  private waiting: (() => void) | null = null;

  constructor(
    private readonly source: AsyncGenerator<readonly StreamEntry[]>,
    private readonly gone: AbortController,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<readonly StreamEntry[]> {
    return this.source;
  }

  close(): void {
    this.gone.abort();
    // A pump waiting for the sink to catch up goes on, finds the source ended, and ends the sink.
    this.resume();
  }

  pipe(sink: ReplySink): void {
    void this.pump(sink);
  }

  resume(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  private async pump(sink: ReplySink): Promise<void> {
    try {
      for await (const batch of this.source) {
        if (!sink.push(batch)) await new Promise<void>((resolve) => (this.waiting = resolve));
      }
    } catch (err) {
      sink.fail(err);
      return;
    }
    sink.end();
  }
}

export function createReplies(deps: RepliesDeps) {
  const { db, registry } = deps;
  // One object for every reply (each producer keeps it for its life).
  const producerDeps: ProducerDeps = { ...deps.producer, log: deps.log };

  async function loadVisible(caller: ReplyCaller, messageId: string): Promise<ReplyRow> {
    if (!UUID.test(messageId)) throw new AppError('MESSAGE_NOT_FOUND');
    const row = await getReply(db, messageId);
    const visible =
      row && !row.session_deleted && (row.session_user_id === null || row.session_user_id === caller.userId);
    if (!row || !visible || row.role !== 'assistant') throw new AppError('MESSAGE_NOT_FOUND');
    return row;
  }

  /** Closes a dead producer's row (see closeOrphan); false when the database finds it alive or final. */
  const closeDead = (messageId: string, status: 'stopped' | 'interrupted') =>
    closeOrphan(db, messageId, status, deps.remote?.recoverText ?? null, deps.staleAfterMs);

  /**
   * The entries after `after`, wherever they are: this instance's log, the shared Redis log, or
   * rebuilt from the row. Throws MESSAGE_NOT_FOUND (before anything is streamed) when the
   * caller may not see the message.
   */
  async function subscribe(
    messageId: string,
    after: Cursor | null,
    caller: ReplyCaller,
    opts: SubscribeOptions = {},
  ): Promise<Subscription> {
    const first = opts.verified ? undefined : await loadVisible(caller, messageId);
    const gen = registry.get(messageId);
    // This instance's log is the reply only while it runs or once its final write stored it.
    if (gen && (!gen.ended || gen.stored)) return new LocalReplyStream(gen, after);
    const row = first ?? (await loadVisible(caller, messageId));
    const gone = new AbortController();
    const signal = gone.signal;
    const stored = async function* (from: Cursor | null) {
      yield* storedEntries(row, from, () => getReply(db, messageId), {
        pollMs: 250,
        signal,
        staleMs: deps.staleAfterMs,
        closeDead: () => closeDead(messageId, 'interrupted'),
      });
    };
    // The row is the truth of a finished reply (see replay.ts): once it is final, or its producer
    // is dead, the shared log (which may hold a dead producer's unstored tail) is not read at all.
    if (row.status !== 'streaming' || isStale(row, deps.staleAfterMs)) return single(stored(after), gone);
    const remote = await deps.remote?.entries(messageId, after, signal);
    return single(remote ? withFallback(remote, after, stored) : stored(after), gone);
  }

  function single(source: AsyncIterable<StreamEntry>, gone: AbortController): Subscription {
    const batches = (async function* () {
      for await (const e of source) yield [e];
    })();
    return new IteratedReplyStream(batches, gone);
  }

  return {
    /** Starts the producer of a persisted turn (the assistant row exists, `streaming`). */
    start(ids: ReplyIds, input: TurnInput, options?: ReplyOptions): Generation {
      const gen = startGeneration(producerDeps, ids, input, options);
      registry.add(gen);
      return gen;
    },

    subscribe,

    /** The id of the session's running reply, if the caller may see it (resume by chat id). */
    activeIn: (sessionId: string, caller: ReplyCaller) => activeReplyOf(db, sessionId, caller.userId),

    /** Waits for the reply's end (on any instance) and returns the stored row. */
    async result(messageId: string, caller: ReplyCaller, opts: SubscribeOptions = {}): Promise<ReplyRow> {
      const gen = registry.get(messageId);
      if (gen && opts.verified) await gen.done;
      else for await (const _ of await subscribe(messageId, null, caller, opts));
      const row = await getReply(db, messageId);
      if (!row) throw new AppError('MESSAGE_NOT_FOUND');
      return row;
    },

    /**
     * Stops a running reply wherever it runs; answers the stored message. A 200 is a promise that
     * the reply stops: the intent is first recorded in the row (a database error is a 503 and
     * nothing was promised), then sent over pub/sub as the fast path; a producer that misses the
     * message reads the intent at its next checkpoint or heartbeat.
     */
    async stop(messageId: string, caller: ReplyCaller) {
      const row = await loadVisible(caller, messageId);
      const notRunning = (r: ReplyRow) =>
        new AppError('MESSAGE_NOT_RUNNING', undefined, { message: toMessage(r) });
      if (row.status !== 'streaming') throw notRunning(row);
      const gen = registry.get(messageId);
      if (gen && !gen.ended) {
        gen.abort('stopped');
        await gen.done;
      } else {
        if (!(await recordStop(db, messageId))) {
          const now = await getReply(db, messageId);
          throw notRunning(now ?? row);
        }
        await deps.remote?.requestStop(messageId).catch((err: Error) => {
          deps.log.warn(
            { err: err.message, messageId },
            'stop message not sent; the producer reads it from the row',
          );
        });
        // A live producer stops at once (pub/sub) or at its next checkpoint or heartbeat (the row).
        // One that stopped beating is dead once its LAST beat is `staleAfterMs` old, so a producer
        // that died a while ago is closed at once, not `staleAfterMs` after the stop.
        const giveUp = Date.now() + 2 * deps.staleAfterMs + 1000;
        for (;;) {
          const now = await getReply(db, messageId);
          if (now?.status !== 'streaming') break;
          if (isStale(now, deps.staleAfterMs) && (await closeDead(messageId, 'stopped'))) break;
          if (Date.now() > giveUp) {
            // Beating but not stopping: the stop was promised, so the row is closed regardless.
            await closeOrphan(db, messageId, 'stopped', deps.remote?.recoverText ?? null);
            break;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const after = await getReply(db, messageId);
      if (!after) throw new AppError('MESSAGE_NOT_FOUND');
      // The reply ended some other way before the stop reached it (it completed): nothing was stopped.
      if (after.status !== 'stopped') throw notRunning(after);
      return toMessage(after);
    },

    /** Stops a reply only if it runs on this instance (a stop request from another one). */
    stopLocal: (messageId: string) => registry.stop(messageId, 'stopped'),
    /** Whether a streaming row's producer is still heart-beating, on any instance. */
    producerAlive: (messageId: string) => producerAlive(db, messageId, deps.staleAfterMs),
    runningFor: (userKey: string) => registry.runningFor(userKey),
    /** Shutdown: waits for running replies up to `graceMs`, then stores the rest as interrupted. */
    drain: (graceMs: number) => registry.drain(graceMs),
  };
}

export type Replies = ReturnType<typeof createReplies>;
