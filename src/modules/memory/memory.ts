// Agent memory ("Nanã"): recent turn summaries per session (24 h) and episodes per user (30 d).
//
// Redis key layout (every key starts with `redis.prefix`):
//   <prefix>memory:conv:<sessionId>     LIST of turn summaries, oldest first; RPUSH + LTRIM to the
//                                        newest maxConversationItems + EXPIRE conversationTtlS,
//                                        in one MULTI, so the TTL restarts on every turn
//   <prefix>memory:episodic:<userId>    LIST of episodes, oldest first; same pattern, maxEpisodes,
//                                        EXPIRE episodicTtlS
// Without Redis an in-process map keeps the same bounds and TTLs (one instance only).
// Memory is a nicety: any Redis failure is logged (at most once per 10 s) and reads as "no memory".
import type { Logger } from 'pino';
import { throttle } from '../../lib/async.js';
import type { RedisHandle } from '../../plugins/redis.js';

export interface MemoryStore {
  describe: string;
  rememberTurn(
    sessionId: string,
    turn: { user: string; assistant: string; agentId: string; at: string },
  ): Promise<void>;
  /** Recent turn summaries, oldest first. */
  conversation(sessionId: string): Promise<string[]>;
  rememberEpisode(userId: string, episode: string): Promise<void>;
  episodes(userId: string): Promise<string[]>;
}

export interface MemoryDeps {
  redis: RedisHandle | null;
  conversationTtlS: number;
  episodicTtlS: number;
  maxConversationItems?: number;
  maxEpisodes?: number;
  maxItemChars?: number;
  log: Pick<Logger, 'warn'>;
  /** Milliseconds since the epoch; injectable so TTL expiry can be tested without waiting. */
  now?: () => number;
}

// The in-process stand-in also caps how many lists it holds, so memory use stays bounded.
const MAX_LOCAL_KEYS = 10_000;
const LOG_EVERY_MS = 10_000;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** One line per turn: who asked what, who answered what, clipped to fit maxItemChars. */
function summarize(turn: { user: string; assistant: string; agentId: string; at: string }, max: number) {
  const user = turn.user.replace(/\s+/g, ' ').trim();
  const assistant = turn.assistant.replace(/\s+/g, ' ').trim();
  const head = `[${turn.at}] usuário: `;
  const mid = ` | ${turn.agentId}: `;
  const room = Math.max(0, max - head.length - mid.length);
  // The question gets up to a third of the room; the answer takes the rest.
  const u = clip(user, Math.max(Math.floor(room / 3), room - assistant.length));
  return clip(`${head}${u}${mid}${clip(assistant, Math.max(0, room - u.length))}`, max);
}

interface ListStore {
  push(key: string, item: string, max: number, ttlS: number): Promise<void>;
  read(key: string): Promise<string[]>;
}

function localLists(now: () => number): ListStore {
  const lists = new Map<string, { items: string[]; expiresAt: number }>();
  const live = (key: string) => {
    const entry = lists.get(key);
    if (entry && entry.expiresAt <= now()) {
      lists.delete(key);
      return undefined;
    }
    return entry;
  };
  return {
    async push(key, item, max, ttlS) {
      const items = live(key)?.items ?? [];
      items.push(item);
      if (items.length > max) items.splice(0, items.length - max);
      // Re-inserting moves the key to the end of the Map's order: the first key is the least recent.
      lists.delete(key);
      lists.set(key, { items, expiresAt: now() + ttlS * 1000 });
      while (lists.size > MAX_LOCAL_KEYS) {
        const oldest = lists.keys().next().value;
        if (oldest === undefined) break;
        lists.delete(oldest);
      }
    },
    async read(key) {
      return [...(live(key)?.items ?? [])];
    },
  };
}

function redisLists(redis: RedisHandle): ListStore {
  const ready = () => {
    // While ioredis reconnects, commands would queue for seconds; fail fast instead.
    const s = redis.client.status;
    if (s === 'reconnecting' || s === 'end' || s === 'close') throw new Error(`redis is ${s}`);
  };
  return {
    async push(key, item, max, ttlS) {
      ready();
      const results = await redis.client
        .multi()
        .rpush(key, item)
        .ltrim(key, -max, -1)
        .expire(key, ttlS)
        .exec();
      const failed = results?.find(([err]) => err);
      if (!results || failed) throw failed?.[0] ?? new Error('redis transaction aborted');
    },
    async read(key) {
      ready();
      return redis.client.lrange(key, 0, -1);
    },
  };
}

export function createMemoryStore(deps: MemoryDeps): MemoryStore {
  const now = deps.now ?? Date.now;
  const maxConversation = deps.maxConversationItems ?? 20;
  const maxEpisodes = deps.maxEpisodes ?? 50;
  const maxChars = deps.maxItemChars ?? 2000;
  const store = deps.redis ? redisLists(deps.redis) : localLists(now);
  const prefix = deps.redis?.prefix ?? '';
  const convKey = (sessionId: string) => `${prefix}memory:conv:${sessionId}`;
  const episodicKey = (userId: string) => `${prefix}memory:episodic:${userId}`;

  const shouldLog = throttle(LOG_EVERY_MS, now);
  const degrade =
    <T>(op: string, fallback: T) =>
    (err: unknown) => {
      if (shouldLog()) {
        deps.log.warn(
          { err: err instanceof Error ? err.message : String(err), op },
          'memory unavailable; continuing without it',
        );
      }
      return fallback;
    };

  return {
    describe: deps.redis ? `memory: ${deps.redis.describe}` : 'memory: in-process (single instance only)',
    rememberTurn(sessionId, turn) {
      return store
        .push(convKey(sessionId), summarize(turn, maxChars), maxConversation, deps.conversationTtlS)
        .catch(degrade('rememberTurn', undefined));
    },
    conversation(sessionId) {
      return store.read(convKey(sessionId)).catch(degrade('conversation', []));
    },
    rememberEpisode(userId, episode) {
      const text = clip(episode.replace(/\s+/g, ' ').trim(), maxChars);
      if (!text) return Promise.resolve();
      return store
        .push(episodicKey(userId), text, maxEpisodes, deps.episodicTtlS)
        .catch(degrade('rememberEpisode', undefined));
    },
    episodes(userId) {
      return store.read(episodicKey(userId)).catch(degrade('episodes', []));
    },
  };
}
