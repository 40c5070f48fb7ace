// The reply writer: one timer and a few statements per tick for every live reply's checkpoints, heartbeats and final writes.
//
// A write per reply per second does not scale: at ten thousand live replies it is ten thousand
// single-row UPDATEs a second, and a burst of finishing replies queues thousands of final writes
// on the request pool until they time out. Here all live replies share one timer; each tick
// collects the dirty ones (grown text, heartbeat due) and writes them in one statement per batch
// of `maxBatch`. Final writes wait in this writer's queue, never in a pool's: they are group
// committed too (one statement for every final waiting when a lane frees), except those with a
// finalize hook, which need their own transaction. The writer uses at most `lanes` connections at
// once, on a path of its own (a dedicated pool), so request traffic cannot starve it. The queue
// holds at most one final write per running reply, so admission (the concurrency caps) bounds it:
// a finished reply never waits for room, only for its turn.
import type { Logger } from 'pino';
import type { Db, Tx } from '../../db/client.js';
import { throttle } from '../../lib/async.js';
import { isOutage } from '../../lib/outage.js';
import type { CompleteExtra } from './events.js';
import type { CheckpointAnswer, FinalWrite } from './generation.repo.js';
import { type CheckpointRow, checkpointMany, finalize, finalizeMany } from './writer.repo.js';

/** What the writer asks of a live reply at each tick. */
export interface LiveReply {
  readonly messageId: string;
  /** The text so far. */
  content(): string;
  /** The agent fields for the row, once known: written with the first checkpoint after. */
  meta(): CheckpointRow['meta'] | undefined;
  /** What the row said at a checkpoint or heartbeat (a stop, a row closed by someone else). */
  answered(answer: CheckpointAnswer): void;
}

export type FinalizeTx = (tx: Tx) => Promise<CompleteExtra | undefined>;
export interface FinalResult {
  persisted: boolean;
  extra: CompleteExtra;
}

export interface WriterMetrics {
  /** `rows` checkpoints (one statement's) written, or failed. */
  checkpoint(result: 'ok' | 'failed', rows: number): void;
  /** One statement (or hook transaction) of `rows` replies. */
  writerBatch(kind: 'checkpoint' | 'final', rows: number): void;
}

export interface ReplyWriter {
  /** Checkpoints `reply` from now on. */
  track(reply: LiveReply): void;
  /** Stops checkpointing `reply`; resolves once its checkpoint in flight (if any) is written. */
  untrack(reply: LiveReply): Promise<void>;
  /** Queues a final write; resolves once it committed (or rejects with the statement's error). */
  finalize(write: FinalWrite, hook?: FinalizeTx): Promise<FinalResult>;
  /** Final writes waiting for a lane. */
  queued(): number;
  /** Resolves when nothing is queued or being written (shutdown, after the replies ended). */
  drain(): Promise<void>;
  /** Stops the timer. */
  close(): void;
}

export interface WriterOptions {
  db: Db;
  log: Logger;
  /** Connections the writer may use at once (its pool's size; 1 on PGlite). */
  lanes: number;
  /** Longest time between writes of a growing reply. */
  checkpointMs: number;
  /** Longest time between heartbeats of a reply that does not grow. */
  heartbeatMs: number;
  /** Most replies per statement: bounds a statement's size and the time a lane is held. */
  maxBatch?: number;
  metrics?: WriterMetrics;
}

interface Slot {
  reply: LiveReply;
  persistedChars: number;
  metaWritten: boolean;
  lastBeat: number;
  /** The checkpoint statement this reply is in, while it runs. */
  inFlight: Promise<void> | null;
}

interface FinalItem {
  write: FinalWrite;
  hook?: FinalizeTx;
  resolve(r: FinalResult): void;
  reject(err: unknown): void;
}

export function createReplyWriter(opts: WriterOptions): ReplyWriter {
  const maxBatch = opts.maxBatch ?? 500;
  const lanes = Math.max(1, opts.lanes);
  const live = new Map<string, Slot>();
  const plain: FinalItem[] = [];
  const hooked: FinalItem[] = [];
  const shouldWarn = throttle(10_000);
  let busy = 0;
  let hookTurn = false;
  let flushing = false;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const laneWaiters: Array<() => void> = [];
  let idleWaiters: Array<() => void> = [];

  const idle = () => busy === 0 && !flushing && plain.length === 0 && hooked.length === 0;
  const wakeIdle = () => {
    if (!idle()) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const fn of w) fn();
  };

  // Final writes take a free lane first: a reply's `complete` waits for them; a checkpoint can wait a tick.
  function laneFreed() {
    busy--;
    pump();
    if (busy < lanes && laneWaiters.length > 0) {
      busy++;
      laneWaiters.shift()!();
    }
    wakeIdle();
  }
  function checkpointLane(): Promise<void> {
    if (busy < lanes && plain.length === 0 && hooked.length === 0) {
      busy++;
      return Promise.resolve();
    }
    return new Promise((resolve) => laneWaiters.push(resolve));
  }

  function pump() {
    while (busy < lanes && (plain.length > 0 || hooked.length > 0)) {
      busy++;
      // Hooked and plain finals alternate, so neither kind waits behind the other's backlog.
      hookTurn = !hookTurn;
      const work =
        hooked.length > 0 && (hookTurn || plain.length === 0)
          ? writeHooked(hooked.shift()!)
          : writePlain(plain.splice(0, maxBatch));
      void work.finally(laneFreed);
    }
  }

  async function writePlain(batch: FinalItem[]) {
    try {
      opts.metrics?.writerBatch('final', batch.length);
      const stored = await finalizeMany(
        opts.db,
        batch.map((i) => i.write),
      );
      for (const i of batch) i.resolve({ persisted: stored.has(i.write.messageId), extra: {} });
    } catch (err) {
      // A row the statement cannot take (bad text) must not fail its neighbours: alone, only it fails.
      // During an outage every row fails alike, and each producer retries within its window.
      if (batch.length > 1 && !isOutage(err)) {
        for (const i of batch) await writePlain([i]);
        return;
      }
      for (const i of batch) i.reject(err);
    }
  }

  async function writeHooked(item: FinalItem) {
    try {
      opts.metrics?.writerBatch('final', 1);
      item.resolve(await finalize(opts.db, item.write, item.hook));
    } catch (err) {
      item.reject(err);
    }
  }

  /** Takes what each live reply needs written now, and marks it as written (undone on failure). */
  function collect(now: number) {
    const due: Array<{ slot: Slot; row: CheckpointRow }> = [];
    for (const slot of live.values()) {
      const text = slot.reply.content();
      const grown = text.length !== slot.persistedChars;
      if (!grown && now - slot.lastBeat < opts.heartbeatMs) continue;
      const meta = grown && !slot.metaWritten ? slot.reply.meta() : undefined;
      if (meta) slot.metaWritten = true;
      slot.persistedChars = text.length;
      slot.lastBeat = now;
      due.push({ slot, row: { messageId: slot.reply.messageId, content: grown ? text : null, meta } });
    }
    return due;
  }

  async function writeCheckpoints(batch: Array<{ slot: Slot; row: CheckpointRow }>): Promise<void> {
    try {
      opts.metrics?.writerBatch('checkpoint', batch.length);
      const answers = await checkpointMany(
        opts.db,
        batch.map((b) => b.row),
      );
      opts.metrics?.checkpoint('ok', batch.length);
      // Only rows with news answer: a stop recorded in the row, or a row a stop already closed.
      if (answers.size > 0)
        for (const { slot, row } of batch) {
          const answer = answers.get(row.messageId);
          if (answer && live.get(row.messageId) === slot) slot.reply.answered(answer);
        }
    } catch (err) {
      if (batch.length > 1 && !isOutage(err)) {
        for (const b of batch) await writeCheckpoints([b]);
        return;
      }
      opts.metrics?.checkpoint('failed', batch.length);
      for (const { slot, row } of batch) {
        // Not stored: the next tick writes it again, until the final write.
        slot.persistedChars = -1;
        if (row.meta) slot.metaWritten = false;
      }
      if (shouldWarn())
        opts.log.warn({ err: (err as Error).message, rows: batch.length }, 'checkpoint failed');
    }
  }

  async function tick() {
    // A tick still writing (a slow database) is not joined by the next one: writes stay bounded by ticks.
    if (flushing) return;
    if (live.size === 0) {
      stopTimer();
      return;
    }
    flushing = true;
    try {
      const due = collect(Date.now());
      for (let i = 0; i < due.length; i += maxBatch) {
        await checkpointLane();
        // A reply that ended while earlier batches were written has its final write coming instead.
        const batch = due.slice(i, i + maxBatch).filter((b) => live.get(b.row.messageId) === b.slot);
        if (batch.length === 0) {
          laneFreed();
          continue;
        }
        const written = writeCheckpoints(batch).finally(laneFreed);
        for (const b of batch) b.slot.inFlight = written;
        await written;
        for (const b of batch) if (b.slot.inFlight === written) b.slot.inFlight = null;
      }
    } finally {
      flushing = false;
      wakeIdle();
    }
  }

  function startTimer() {
    if (timer || closed) return;
    timer = setInterval(() => void tick(), Math.min(opts.checkpointMs, opts.heartbeatMs));
    timer.unref();
  }
  function stopTimer() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  return {
    track(reply) {
      const slot: Slot = {
        reply,
        persistedChars: 0,
        metaWritten: false,
        lastBeat: Date.now(),
        inFlight: null,
      };
      live.set(reply.messageId, slot);
      startTimer();
    },
    // A method, not a closure returned by track(): a held reply keeps nothing of its own here.
    async untrack(reply) {
      const slot = live.get(reply.messageId);
      if (slot?.reply !== reply) return;
      live.delete(reply.messageId);
      // The final write must not be overtaken by a checkpoint of the same row still on the wire.
      await slot.inFlight;
    },
    finalize(write, hook) {
      return new Promise<FinalResult>((resolve, reject) => {
        (hook ? hooked : plain).push({ write, hook, resolve, reject });
        pump();
      });
    },
    queued: () => plain.length + hooked.length,
    drain() {
      if (idle()) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    close() {
      closed = true;
      stopTimer();
    },
  };
}
