// Generation event logs on Redis Streams, and cross-instance stop over pub/sub.
//
// Key layout (every key starts with the Redis prefix):
//   <prefix>gen:<messageId>   STREAM of events; entry id = the SSE cursor `<offset>-<seq>`; field `e` = event JSON;
//                             capped with MAXLEN ~ STREAM_LOG_MAXLEN; the script call that adds entries also gives
//                             the key STREAM_LOG_TTL_S when it has less than half of it left, or none (a new key,
//                             or one re-created after a Redis restart or an eviction)
//   <prefix>gen:stop          pub/sub channel; message = messageId to stop
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { throttle } from '../../lib/async.js';
import type { RedisHandle } from '../../plugins/redis.js';
import {
  type ChunkEvent,
  type Cursor,
  isTerminal,
  parseCursor,
  type ReplyEvent,
  type StreamEntry,
} from './events.js';
import type { EventMirror } from './generation.js';
import type { RemoteGenerations } from './replies.js';

export interface RedisLogOptions {
  maxLen: number;
  ttlS: number;
  log: Pick<Logger, 'warn'>;
}

const FLUSH_DELAY_MS = 5;

/**
 * One flush as one command. KEYS: the keys it touches. ARGV[1] MAXLEN, ARGV[2] TTL (s), ARGV[3]
 * half the TTL, then ops:
 *   'x' <key index> <entry id> <event JSON>   XADD key MAXLEN ~ ARGV[1] id e json
 *   'e' <key index>                           EXPIRE key ARGV[2], when its TTL is under ARGV[3]
 *                                             (-1: none, a new or re-created key; -2: no key)
 *   'z' <key index> <member>                  ZREM key member
 * The TTL is read where the key is, so no XADD can leave a key without one: not after a Redis
 * restart or failover, and not when an eviction removed the key mid-reply and the next XADD made
 * it again (the client-side record of which keys had a TTL missed that case).
 * A script runs whole or not at all, as the MULTI it replaces did (Redis refuses it up front when
 * out of memory; a connection lost mid-flush leaves no XADD without its EXPIRE). pcall, as in a
 * MULTI: one failing command (an XADD resent after a reconnect, its id already there) does not
 * stop the others.
 * Why a script and not MULTI: ioredis builds a Command, a promise and a timer per command of a
 * MULTI, linked through the pipeline, and V8 promoted ~2 MB/s of them to the old generation at
 * 10k live replies (bench:held's "promoted MB/s"): the old space, and RSS, grew with it.
 */
const FLUSH_SCRIPT = `local renewBelow = tonumber(ARGV[3])
local i = 4
while i <= #ARGV do
  local op, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'x' then
    redis.pcall('XADD', key, 'MAXLEN', '~', ARGV[1], ARGV[i + 2], 'e', ARGV[i + 3])
    i = i + 4
  elseif op == 'e' then
    local ttl = redis.call('TTL', key)
    if ttl ~= -2 and ttl < renewBelow then redis.pcall('EXPIRE', key, ARGV[2]) end
    i = i + 2
  else
    redis.pcall('ZREM', key, ARGV[i + 2])
    i = i + 3
  end
end`;

type FlushClient = Redis & {
  genMirrorFlush(numKeys: number, keys: string[], args: Array<string | number>): Promise<unknown>;
};

const keyOf = (redis: RedisHandle, messageId: string) => `${redis.prefix}gen:${messageId}`;

export interface RedisMirror extends EventMirror {
  /**
   * Removes `member` from the sorted set `key` with the next flush, in the same round trip as the
   * logs (a turn's concurrency slot: released right after its `complete` was logged). While Redis
   * is away it is queued on the connection and sent on reconnect, unlike the logs.
   */
  removeLater(key: string, member: string): void;
}

/**
 * Mirrors events with one pipeline per event-loop turn. Consecutive chunks in a batch are merged
 * into one entry (its id is the last chunk's cursor): the offset in the cursor lets a reader cut
 * a merged chunk exactly where its client stopped, so merging loses nothing and saves Redis work.
 */
export function createRedisMirror(redis: RedisHandle, opts: RedisLogOptions): RedisMirror {
  const queues = new Map<string, StreamEntry[]>();
  let removals: Array<[string, string]> = [];
  let scheduled = false;
  const shouldLog = throttle(10_000);
  const renewBelowS = Math.floor(opts.ttlS / 2);
  const client = redis.client as FlushClient;
  client.defineCommand('genMirrorFlush', { lua: FLUSH_SCRIPT });

  const removeNow = (list: Array<[string, string]>) => {
    if (list.length === 0) return;
    const pipe = redis.client.pipeline();
    for (const [key, member] of list) pipe.zrem(key, member);
    pipe.exec().catch(() => {});
  };
  const flush = () => {
    scheduled = false;
    const removing = removals;
    removals = [];
    if (!redis.ready()) {
      // Redis is away: resume falls back to the stored row; a release waits for the reconnect.
      queues.clear();
      removeNow(removing);
      return;
    }
    const keys: string[] = [];
    const args: Array<string | number> = [opts.maxLen, opts.ttlS, renewBelowS];
    for (const [key, member] of removing) {
      keys.push(key);
      args.push('z', keys.length, member);
    }
    for (const [messageId, entries] of queues) {
      const key = keyOf(redis, messageId);
      keys.push(key);
      const k = keys.length;
      // A run of chunks is one entry: its text joined, under the last chunk's cursor and fields.
      let run: ChunkEvent | null = null;
      let runId = '';
      let runText = '';
      for (const e of entries) {
        if (e.event.type === 'chunk') {
          run = e.event;
          runId = e.id;
          runText += e.event.content;
          continue;
        }
        if (run) {
          args.push('x', k, runId, JSON.stringify({ ...run, content: runText }));
          run = null;
          runText = '';
        }
        args.push('x', k, e.id, JSON.stringify(e.event));
      }
      if (run) args.push('x', k, runId, JSON.stringify({ ...(run as ChunkEvent), content: runText }));
      args.push('e', k);
    }
    queues.clear();
    if (keys.length === 0) return;
    client.genMirrorFlush(keys.length, keys, args).catch((err: Error) => {
      // A refused script ran none of its commands (e.g. Redis is out of memory): the releases go
      // again on their own, since a lost one would hold its slot until the slot TTL. (A key's
      // TTL is checked again by its next flush.)
      removeNow(removing);
      if (shouldLog())
        opts.log.warn({ err: err.message }, 'stream log mirror failed; resume falls back to the database');
    });
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    // A short delay batches a burst of events into one pipeline (and merges its chunks).
    setTimeout(flush, FLUSH_DELAY_MS);
  };

  return {
    append(messageId, entry) {
      const q = queues.get(messageId);
      if (q) q.push(entry);
      else queues.set(messageId, [entry]);
      schedule();
    },
    removeLater(key, member) {
      removals.push([key, member]);
      schedule();
    },
  };
}

function toEntry(id: string, fields: string[]): StreamEntry | null {
  const cursor = parseCursor(id);
  const raw = fields[1];
  if (!cursor || fields[0] !== 'e' || raw === undefined) return null;
  return { id, seq: cursor.seq, offset: cursor.offset, event: JSON.parse(raw) as ReplyEvent };
}

/** Drops what the client already has: whole entries by seq, merged chunks cut by offset. */
function afterCursor(entry: StreamEntry, after: Cursor | null): StreamEntry | null {
  if (!after) return entry;
  if (entry.event.type === 'chunk') {
    const content = entry.event.content;
    const startOffset = entry.offset - content.length;
    if (entry.offset <= after.offset) return null;
    if (startOffset >= after.offset) return entry.seq > after.seq ? entry : null;
    return { ...entry, event: { ...entry.event, content: content.slice(after.offset - startOffset) } };
  }
  return entry.seq > after.seq ? entry : null;
}

export interface RemoteOptions {
  /** Stops a generation running on this instance; true if it was here. */
  stopLocal(messageId: string): boolean;
  /** Whether the producer of a still-streaming row is alive (heart-beating). */
  producerAlive(messageId: string): Promise<boolean>;
  staleMs: number;
  log: Pick<Logger, 'warn' | 'info'>;
}

export interface RemoteGenerationsHandle extends RemoteGenerations {
  close(): Promise<void>;
}

export async function createRemoteGenerations(
  redis: RedisHandle,
  opts: RemoteOptions,
): Promise<RemoteGenerationsHandle> {
  const channel = `${redis.prefix}gen:stop`;
  const sub = redis.subscriber();
  sub.on('message', (ch: string, messageId: string) => {
    if (ch === channel && opts.stopLocal(messageId))
      opts.log.info({ messageId }, 'stopped on request from another instance');
  });
  try {
    await sub.subscribe(channel);
  } catch (err) {
    opts.log.warn(
      { err: (err as Error).message },
      'stop channel unavailable; stop works on this instance only',
    );
  }
  const readers = new Set<Redis>();

  async function* follow(key: string, messageId: string, after: Cursor | null, signal: AbortSignal) {
    let last = after ? `${after.offset}-${after.seq}` : '0-0';
    // A blocking XREAD holds its connection, so each remote follower gets its own (resume is rare).
    const reader = redis.client.duplicate({ commandTimeout: undefined, maxRetriesPerRequest: 1 });
    readers.add(reader);
    reader.on('error', () => {});
    const abort = () => reader.disconnect();
    signal.addEventListener('abort', abort, { once: true });
    try {
      for (;;) {
        if (signal.aborted) return;
        let res: Array<[string, Array<[string, string[]]>]> | null;
        try {
          res = (await reader.xread('COUNT', 500, 'BLOCK', 1000, 'STREAMS', key, last)) as typeof res;
        } catch (err) {
          // The client left (its abort closed this connection): not an error.
          if (signal.aborted) return;
          // Redis went away mid-follow: the row carries the reply from here.
          opts.log.warn(
            { err: (err as Error).message, messageId },
            'stream log unreadable; following the row',
          );
          yield null;
          return;
        }
        const batch = res?.[0]?.[1] ?? [];
        if (batch.length === 0) {
          // Nothing new for a second: if the row is final (the terminal entry may never have
          // reached Redis, e.g. a SIGTERM'd instance) or its producer is dead, the row takes over.
          if (!(await opts.producerAlive(messageId))) {
            yield null;
            return;
          }
          continue;
        }
        for (const [id, fields] of batch) {
          last = id;
          const entry = toEntry(id, fields);
          const out = entry && afterCursor(entry, after);
          if (out) yield out;
          if (entry && isTerminal(entry.event)) return;
        }
      }
    } finally {
      signal.removeEventListener('abort', abort);
      readers.delete(reader);
      reader.disconnect();
    }
  }

  return {
    async entries(messageId, after, signal) {
      const key = keyOf(redis, messageId);
      try {
        if (!redis.ready()) return null;
        // Only a log that still starts at the first event is trusted; a trimmed or partly
        // re-created one is not, and the stored row rebuilds the stream exactly instead.
        const first = (await redis.client.xrange(key, '-', '+', 'COUNT', 1))[0];
        if (!first || parseCursor(first[0])?.seq !== 1) return null;
      } catch {
        return null; // Redis is away: the caller rebuilds from the database
      }
      const source = follow(key, messageId, after, signal);
      return (async function* () {
        for await (const e of source) {
          if (e === null) {
            // The log ends without a terminal event: the caller continues from the row.
            return;
          }
          yield e;
        }
      })();
    },
    async requestStop(messageId) {
      await redis.client.publish(channel, messageId);
    },
    async recoverText(messageId, stored) {
      if (!redis.ready()) return null;
      const all = await redis.client.xrange(keyOf(redis, messageId), '-', '+');
      // Only a whole log is trusted: it starts at the first event and its chunks join without a gap.
      let text = '';
      for (const [i, [id, fields]] of all.entries()) {
        const e = toEntry(id, fields);
        if (!e || (i === 0 && e.seq !== 1)) return null;
        if (e.event.type === 'chunk') {
          if (e.offset - e.event.content.length !== text.length) return null;
          text += e.event.content;
        } else if (e.offset !== text.length) return null;
      }
      return text.length > stored.length && text.startsWith(stored) ? text : null;
    },
    async close() {
      for (const r of readers) r.disconnect();
      try {
        await sub.unsubscribe(channel);
      } catch {
        // already closed with the handle
      }
    },
  };
}
