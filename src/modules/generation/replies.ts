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
import { getReply, markStopped, producerAlive, type ReplyRow, toMessage } from './generation.repo.js';
import type { GenerationRegistry } from './registry.js';
import { storedEntries, withFallback } from './replay.js';

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

export interface SubscribeOptions {
  /** Ends the stream early (the client went away). */
  signal?: AbortSignal;
  /** The caller just started or attached to this turn: ownership is already established. */
  verified?: boolean;
}

export interface RepliesDeps {
  db: Db;
  log: Logger;
  registry: GenerationRegistry;
  remote: RemoteGenerations | null;
  producer: Omit<ProducerDeps, 'db' | 'log'>;
  /** A streaming row whose producer has not beaten for this long is dead (same rule as the sweeper). */
  staleAfterMs: number;
}

const NEVER = new AbortController().signal;
const UUID = /^[0-9a-f-]{36}$/i;

export function createReplies(deps: RepliesDeps) {
  const { db, registry } = deps;

  async function loadVisible(caller: ReplyCaller, messageId: string): Promise<ReplyRow> {
    if (!UUID.test(messageId)) throw new AppError('MESSAGE_NOT_FOUND');
    const row = await getReply(db, messageId);
    const visible =
      row && !row.session_deleted && (row.session_user_id === null || row.session_user_id === caller.userId);
    if (!row || !visible || row.role !== 'assistant') throw new AppError('MESSAGE_NOT_FOUND');
    return row;
  }

  async function* local(gen: Generation, after: Cursor | null, signal: AbortSignal): ReplyStream {
    let i = after ? Math.min(after.seq, gen.entries.length) : 0;
    // A subscriber that goes away stops waiting at once, not at the reply's next event.
    const aborted =
      signal === NEVER
        ? null
        : new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    for (;;) {
      if (i < gen.entries.length) {
        const batch = gen.entries.slice(i);
        i += batch.length;
        yield batch;
        continue;
      }
      if (gen.ended || signal.aborted) return;
      await (aborted ? Promise.race([gen.changed(), aborted]) : gen.changed());
    }
  }

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
  ): Promise<ReplyStream> {
    const signal = opts.signal ?? NEVER;
    const first = opts.verified ? undefined : await loadVisible(caller, messageId);
    const gen = registry.get(messageId);
    if (gen) return local(gen, after, signal);
    const stored = async function* (from: Cursor | null) {
      const row = first ?? (await loadVisible(caller, messageId));
      yield* storedEntries(row, from, () => getReply(db, messageId), {
        pollMs: 250,
        signal,
        staleMs: deps.staleAfterMs,
      });
    };
    const remote = await deps.remote?.entries(messageId, after, signal);
    return single(remote ? withFallback(remote, after, stored) : stored(after));
  }

  async function* single(source: AsyncIterable<StreamEntry>): ReplyStream {
    for await (const e of source) yield [e];
  }

  return {
    /** Starts the producer of a persisted turn (the assistant row exists, `streaming`). */
    start(ids: ReplyIds, input: TurnInput, options?: ReplyOptions): Generation {
      const gen = startGeneration({ ...deps.producer, db, log: deps.log }, ids, input, options);
      registry.add(gen);
      return gen;
    },

    subscribe,

    /** Waits for the reply's end (on any instance) and returns the stored row. */
    async result(messageId: string, caller: ReplyCaller, opts: SubscribeOptions = {}): Promise<ReplyRow> {
      const gen = registry.get(messageId);
      if (gen && opts.verified) await gen.done;
      else for await (const _ of await subscribe(messageId, null, caller, opts));
      const row = await getReply(db, messageId);
      if (!row) throw new AppError('MESSAGE_NOT_FOUND');
      return row;
    },

    /** Stops a running reply wherever it runs; answers the stored message. */
    async stop(messageId: string, caller: ReplyCaller) {
      const row = await loadVisible(caller, messageId);
      if (row.status !== 'streaming') {
        throw new AppError('MESSAGE_NOT_RUNNING', undefined, { message: toMessage(row) });
      }
      const gen = registry.get(messageId);
      if (gen) {
        gen.abort('stopped');
        await gen.done;
      } else if (deps.remote) {
        await deps.remote.requestStop(messageId);
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline) {
          const now = await getReply(db, messageId);
          if (now && now.status !== 'streaming') break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const after = await getReply(db, messageId);
      if (after?.status === 'streaming') {
        // No live producer answered (it died): store what the last checkpoint kept, as stopped.
        await markStopped(db, messageId);
        return toMessage((await getReply(db, messageId))!);
      }
      return toMessage(after!);
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
