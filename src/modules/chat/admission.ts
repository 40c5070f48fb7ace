// Admission of a turn: the chat rate-limit step and the user's concurrency slot in one Redis round trip, plus the daily token budget.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import { throttle } from '../../lib/async.js';
import type { DescriptorGuard } from '../../lib/descriptors.js';
import type { ChatLimiter, RateStep } from '../../plugins/rate-limit.js';
import type { RedisHandle } from '../../plugins/redis.js';
import { tokensUsedToday } from '../generation/generation.repo.js';

export interface AdmissionDeps {
  db: Db;
  redis: RedisHandle | null;
  /** The chat class's limiter (from the rate-limit plugin); its step is taken here, with the slot. */
  limiter: ChatLimiter;
  maxConcurrent: number;
  dailyTokenBudget: number;
  /** A slot older than this is a crashed instance's leftover and no longer counts. */
  slotTtlMs: number;
  /**
   * Sends a slot's release with other fire-and-forget Redis writes (the stream log's flush), so it
   * costs no round trip of its own; absent: releases go in their own pipeline.
   */
  removeLater?(key: string, member: string): void;
  /** Refuses new turns (503) while file descriptors run short; absent: no such check. */
  descriptors?: DescriptorGuard;
  log: Pick<Logger, 'warn'>;
}

export interface AdmitRequest {
  /** Whose generations the cap counts (a user, or an anonymous session). */
  userKey: string;
  userId: string | null;
  /** The rate-limit bucket (`u:<id>` / `ip:<addr>`); absent: no rate-limit step (not an HTTP turn). */
  rateKey?: string;
  /** Receives the rate-limit headers of an admitted turn. */
  onHeaders?(headers: Record<string, string>): void;
}

/** Gives a turn's concurrency slot back (see `Admission.admit`). */
export type Release = (now?: boolean) => void;

export interface Admission {
  /**
   * Throws a 429 AppError when the caller may not start a turn; else returns the slot's release.
   * `release(true)` sends it at once instead of with the next stream-log flush: for a request that
   * started no reply (attached to a running one, or failed), whose client may post again at once.
   */
  admit(req: AdmitRequest): Promise<Release>;
}

/**
 * KEYS: the rate-limit counter, the user's running set. ARGV: window ms, rate max, slot id, slot
 * TTL ms, concurrency cap. Returns {count, ttl, state}: state -1 = over the rate limit (no slot
 * taken), 0 = admitted (slot held), n > 0 = n generations already running (no slot taken).
 * The counter counts every attempt, as the route hook did. Slots are scored by Redis' own clock,
 * so instances with skewed clocks agree on which slots are stale.
 */
/** A live reply lasts seconds to minutes: retrying much sooner than this finds the same state. */
const AT_CAPACITY_RETRY_S = 5;

export const ADMIT_SCRIPT = `local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local t = redis.call('PTTL', KEYS[1])
if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); t = tonumber(ARGV[1]) end
if c > tonumber(ARGV[2]) then return {c, t, -1} end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], 0, ms - tonumber(ARGV[4]))
redis.call('ZADD', KEYS[2], ms, ARGV[3])
local n = redis.call('ZCARD', KEYS[2])
if n > tonumber(ARGV[5]) then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return {c, t, n - 1}
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {c, t, 0}`;

type AdmitClient = Redis & {
  admitTurn(
    rateKey: string,
    runKey: string,
    windowMs: number,
    max: number,
    slot: string,
    slotTtlMs: number,
    cap: number,
  ): Promise<[number, number, number]>;
};

export function createAdmission(deps: AdmissionDeps): Admission {
  const { limiter } = deps;
  const client = deps.redis ? (limiter.client as AdmitClient | null) : null;
  // EVALSHA with a fallback to EVAL: Redis runs the cached script without re-reading its text.
  client?.defineCommand('admitTurn', { numberOfKeys: 2, lua: ADMIT_SCRIPT });
  const shouldLog = throttle(10_000);
  // Slot members: unique across instances (a random prefix per admission) and turns (a counter);
  // cheaper than a UUID per turn, which Node builds from 20 string concatenations.
  const slotPrefix = `${randomUUID()}:`;
  let slotSeq = 0;
  const warn = (err: unknown) => {
    if (shouldLog())
      deps.log.warn(
        { err: (err as Error).message },
        'admission store unavailable; the chat rate limit fails open, the concurrency cap is local only',
      );
  };

  // Releases leave in one pipeline per event-loop turn (on the queueing connection, so a release
  // issued during a reconnect still lands); nothing the client waits for.
  let releases: Array<[string, string]> = [];
  const flushReleases = () => {
    const batch = releases;
    releases = [];
    const pipe = deps.redis!.client.pipeline();
    for (const [key, slot] of batch) pipe.zrem(key, slot);
    pipe.exec().catch(() => {});
  };
  const release = (key: string, slot: string, now = false) => {
    if (deps.removeLater && !now) return deps.removeLater(key, slot);
    if (releases.length === 0) setImmediate(flushReleases);
    releases.push([key, slot]);
  };

  const checkBudget = async (userId: string) => {
    const used = await tokensUsedToday(deps.db, userId);
    if (used >= deps.dailyTokenBudget) {
      throw new AppError(
        'TOKEN_BUDGET_EXCEEDED',
        undefined,
        { budget: deps.dailyTokenBudget, used },
        { 'retry-after': String(secondsToMidnightUtc()) },
      );
    }
  };

  const tooMany = () =>
    new AppError('TOO_MANY_GENERATIONS', undefined, { limit: deps.maxConcurrent }, { 'retry-after': '5' });

  return {
    async admit(req) {
      // Before any other work: a turn refused here costs nothing, one admitted must be able to finish.
      if (deps.descriptors?.full())
        throw new AppError('AT_CAPACITY', undefined, undefined, {
          'retry-after': String(AT_CAPACITY_RETRY_S),
        });
      // The budget (a Postgres read) and the Redis step run side by side, not one after the other.
      const budget =
        req.userId && deps.dailyTokenBudget > 0
          ? checkBudget(req.userId).then(
              () => null,
              (e) => e,
            )
          : null;
      let step: RateStep | null = null;
      let done: Release = () => {};
      let rejected: AppError | null = null;
      if (client && client.status === 'ready') {
        const runKey = `${deps.redis!.prefix}running:${req.userKey}`;
        const slot = slotPrefix + (++slotSeq).toString(36);
        try {
          const [current, ttlMs, state] = await client.admitTurn(
            req.rateKey ? limiter.keyOf(req.rateKey) : `${deps.redis!.prefix}rl:none`,
            runKey,
            limiter.windowMs,
            req.rateKey ? limiter.max : Number.MAX_SAFE_INTEGER,
            slot,
            deps.slotTtlMs,
            deps.maxConcurrent,
          );
          if (req.rateKey) step = { current, ttlMs };
          if (state === -1) rejected = limiter.exceeded(step!);
          else if (state > 0) rejected = tooMany();
          else done = (now) => release(runKey, slot, now);
        } catch (err) {
          warn(err); // fails open, as the route hook does (skipOnError)
        }
      } else if (client) {
        warn(new Error(`redis ${client.status}`));
      } else if (req.rateKey) {
        // No Redis configured: one instance, its own counter.
        step = limiter.localStep(limiter.keyOf(req.rateKey));
      }
      if (!rejected && step && step.current > limiter.max) rejected = limiter.exceeded(step);
      const budgetErr = budget ? await budget : null;
      if (rejected || budgetErr) {
        done(true);
        throw rejected ?? budgetErr;
      }
      if (step) req.onHeaders?.(limiter.headers(step));
      deps.descriptors?.admitted();
      return done;
    },
  };
}

function secondsToMidnightUtc(): number {
  const now = new Date();
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((midnight - now.getTime()) / 1000));
}
