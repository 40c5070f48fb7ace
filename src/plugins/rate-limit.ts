// Rate limits with @fastify/rate-limit (Redis-backed when configured), per user or per client IP, by class.
import rateLimit from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { throttle } from '../lib/async.js';
import type { RedisHandle } from './redis.js';

/**
 * `poll` is the frontend's investigation status/results polling (every 1–2 s, back to back once
 * finished): its own budget, so a detail page left open never eats the `read` budget of chat,
 * sessions and history.
 */
export type RateLimitClass = 'chat' | 'read' | 'investigations' | 'poll';

export type RateLimitSettings = (cls: RateLimitClass) => Record<string, unknown>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's rate-limit class: the one way a route declares its limit. */
    rateLimitClass?: RateLimitClass;
  }
  interface FastifyInstance {
    /** Per-class settings, for routes that pass `config.rateLimit` themselves. */
    rateLimitSettings: RateLimitSettings;
  }
}

/** A logged-in user is limited as themself on every instance; anonymous callers by client IP. */
export function callerKey(request: FastifyRequest): string {
  return request.user ? `u:${request.user.id}` : `ip:${request.ip}`;
}

export interface RateLimitDeps {
  config: Pick<
    Config,
    | 'RATE_LIMIT_CHAT_PER_MINUTE'
    | 'RATE_LIMIT_READ_PER_MINUTE'
    | 'RATE_LIMIT_INVESTIGATIONS_PER_MINUTE'
    | 'RATE_LIMIT_POLL_PER_MINUTE'
  >;
  redis: RedisHandle | null;
  log: Pick<Logger, 'warn'>;
}

/**
 * Registers the plugin with no global limit. A route opts in with `config: { rateLimitClass }`;
 * the returned per-class settings are for routes that still pass `config.rateLimit` themselves.
 */
export const rateLimitPlugin = fp<RateLimitDeps>(
  async (app, deps) => {
    // Its own connection without an offline queue: when Redis is away a check fails at once and
    // the limiter fails open (skipOnError) instead of holding every request for a reconnect.
    const client = deps.redis?.client.duplicate({ enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const shouldLog = throttle(10_000);
    client?.on('error', (err: Error) => {
      if (shouldLog()) deps.log.warn({ err: err.message }, 'rate-limit store unavailable; limits fail open');
    });
    const store = sharedStore(client ?? null, `${deps.redis?.prefix ?? ''}rl:`);
    const max: Record<RateLimitClass, number> = {
      chat: deps.config.RATE_LIMIT_CHAT_PER_MINUTE,
      read: deps.config.RATE_LIMIT_READ_PER_MINUTE,
      investigations: deps.config.RATE_LIMIT_INVESTIGATIONS_PER_MINUTE,
      poll: deps.config.RATE_LIMIT_POLL_PER_MINUTE,
    };
    const settings = (cls: RateLimitClass) => ({
      max: max[cls],
      timeWindow: 60_000,
      keyGenerator: (request: FastifyRequest) => `${cls}:${callerKey(request)}`,
    });
    // Added before the plugin's own onRoute hook, so the class becomes settings before it reads them.
    app.addHook('onRoute', (route) => {
      const cls = route.config?.rateLimitClass;
      if (cls && !route.config?.rateLimit) route.config = { ...route.config, rateLimit: settings(cls) };
    });
    await app.register(rateLimit, {
      global: false,
      hook: 'preValidation',
      skipOnError: true,
      store,
      onExceeded: () => {},
      errorResponseBuilder: (_req, ctx) =>
        new AppError('RATE_LIMITED', `Too many requests; retry in ${ctx.after}.`, {
          limit: ctx.max,
          retry_after_s: Math.ceil(ctx.ttl / 1000),
        }),
    });
    if (client) {
      app.addHook('onClose', async () => {
        client.disconnect();
      });
    }
    app.decorate('rateLimitSettings', settings);
  },
  { name: 'rate-limit' },
);

type IncrCallback = (err: Error | null, res?: { current: number; ttl: number }) => void;

// One counter per line of the Lua: increment, start the window on the first hit, report the window's end.
const INCR_SCRIPT = `local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local t = redis.call('PTTL', KEYS[1])
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return {c, t}`;

/**
 * The plugin's own stores keep one bucket per route; a class (say `chat`) spans several routes
 * (/stream and /message), so this store keys by what the route's keyGenerator returns and hands
 * every route the same keyspace.
 */
function sharedStore(client: Redis | null, prefix: string) {
  const local = new Map<string, { count: number; resetAt: number }>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [k, v] of local) if (v.resetAt <= now) local.delete(k);
  }, 60_000);
  sweep.unref();
  return class SharedStore {
    incr(key: string, cb: IncrCallback, timeWindow: number) {
      if (client) {
        client
          .eval(INCR_SCRIPT, 1, `${prefix}${key}`, String(timeWindow))
          .then((res) => {
            const [current, ttl] = res as [number, number];
            cb(null, { current, ttl });
          })
          .catch((err: Error) => cb(err));
        return;
      }
      const now = Date.now();
      let entry = local.get(key);
      if (!entry || entry.resetAt <= now) {
        entry = { count: 0, resetAt: now + timeWindow };
        local.set(key, entry);
      }
      entry.count++;
      cb(null, { current: entry.count, ttl: entry.resetAt - now });
    }
    child() {
      return this;
    }
  };
}
