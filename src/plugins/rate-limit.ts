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

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's rate-limit class: the one way a route declares its limit. */
    rateLimitClass?: RateLimitClass;
  }
  interface FastifyInstance {
    /** The chat class's limiter: turn admission takes its step together with the concurrency slot. */
    chatLimiter: ChatLimiter;
  }
}

/**
 * The `chat` class is not a route hook: a turn's rate-limit step and its concurrency slot are one
 * Redis round trip in turn admission (chat/admission.ts), so the class is enforced there.
 */
export interface ChatLimiter {
  max: number;
  windowMs: number;
  /** The fail-fast connection (no offline queue): a check fails at once when Redis is away. */
  client: Redis | null;
  /** The counter's key for a caller key (`u:<id>` / `ip:<addr>`), on Redis and in process alike. */
  keyOf(callerKey: string): string;
  /** One step of the in-process counter (no Redis, or Redis failed: limits fail open to local). */
  localStep(key: string): RateStep;
  /** The headers a limited route answers with, as @fastify/rate-limit sets them. */
  headers(step: RateStep): Record<string, string>;
  /** The 429 for a step over the limit. */
  exceeded(step: RateStep): AppError;
}

export interface RateStep {
  current: number;
  ttlMs: number;
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
 * Registers the plugin with no global limit. A route opts in with `config: { rateLimitClass }`,
 * the only way a route declares its limit.
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
    const prefix = `${deps.redis?.prefix ?? ''}rl:`;
    const local = localCounter();
    const store = sharedStore(client ?? null, prefix, local);
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
      if (cls && cls !== 'chat' && !route.config?.rateLimit)
        route.config = { ...route.config, rateLimit: settings(cls) };
    });
    const chatMax = max.chat;
    const chatLimiter: ChatLimiter = {
      max: chatMax,
      windowMs: 60_000,
      client: client ?? null,
      keyOf: (callerKey) => `${prefix}chat:${callerKey}`,
      localStep: (key) => local.step(key, 60_000),
      headers: (step) => ({
        'x-ratelimit-limit': String(chatMax),
        'x-ratelimit-remaining': String(Math.max(0, chatMax - step.current)),
        'x-ratelimit-reset': String(Math.ceil(step.ttlMs / 1000)),
      }),
      exceeded: (step) =>
        new AppError(
          'RATE_LIMITED',
          `Too many requests; retry in ${Math.ceil(step.ttlMs / 1000)} seconds.`,
          { limit: chatMax, retry_after_s: Math.ceil(step.ttlMs / 1000) },
          {
            'x-ratelimit-limit': String(chatMax),
            'x-ratelimit-remaining': '0',
            'x-ratelimit-reset': String(Math.ceil(step.ttlMs / 1000)),
            'retry-after': String(Math.max(1, Math.ceil(step.ttlMs / 1000))),
          },
        ),
    };
    app.decorate('chatLimiter', chatLimiter);
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
  },
  { name: 'rate-limit' },
);

type IncrCallback = (err: Error | null, res?: { current: number; ttl: number }) => void;

// One counter per line of the Lua: increment, start the window on the first hit, report the window's end.
export const INCR_SCRIPT = `local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local t = redis.call('PTTL', KEYS[1])
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
return {c, t}`;

/**
 * The plugin's own stores keep one bucket per route; a class (say `chat`) spans several routes
 * (/stream and /message), so this store keys by what the route's keyGenerator returns and hands
 * every route the same keyspace.
 */
function localCounter() {
  const local = new Map<string, { count: number; resetAt: number }>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [k, v] of local) if (v.resetAt <= now) local.delete(k);
  }, 60_000);
  sweep.unref();
  return {
    step(key: string, timeWindow: number): RateStep {
      const now = Date.now();
      let entry = local.get(key);
      if (!entry || entry.resetAt <= now) {
        entry = { count: 0, resetAt: now + timeWindow };
        local.set(key, entry);
      }
      entry.count++;
      return { current: entry.count, ttlMs: entry.resetAt - now };
    },
  };
}

function sharedStore(client: Redis | null, prefix: string, local: ReturnType<typeof localCounter>) {
  // EVALSHA with a fallback to EVAL (ioredis' defineCommand): Redis does not hash the script per call.
  client?.defineCommand('rlIncr', { numberOfKeys: 1, lua: INCR_SCRIPT });
  return class SharedStore {
    incr(key: string, cb: IncrCallback, timeWindow: number) {
      if (client) {
        (client as Redis & { rlIncr(key: string, windowMs: string): Promise<unknown> })
          .rlIncr(`${prefix}${key}`, String(timeWindow))
          .then((res) => {
            const [current, ttl] = res as [number, number];
            cb(null, { current, ttl });
          })
          .catch((err: Error) => cb(err));
        return;
      }
      const { current, ttlMs } = local.step(key, timeWindow);
      cb(null, { current, ttl: ttlMs });
    }
    child() {
      return this;
    }
  };
}
