// Admission of a turn beyond rate limits: per-user concurrent generations across instances, daily token budget.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { RedisHandle } from '../../plugins/redis.js';
import { tokensUsedToday } from '../generation/generation.repo.js';

export interface AdmissionDeps {
  db: Db;
  redis: RedisHandle | null;
  maxConcurrent: number;
  dailyTokenBudget: number;
  /** A slot older than this is a crashed instance's leftover and no longer counts. */
  slotTtlMs: number;
  log: Pick<Logger, 'warn'>;
}

export interface Admission {
  /** Throws a 429 AppError when the caller may not start a turn; else returns the slot's release. */
  admit(userKey: string, userId: string | null): Promise<() => void>;
}

export function createAdmission(deps: AdmissionDeps): Admission {
  return {
    async admit(userKey, userId) {
      if (userId && deps.dailyTokenBudget > 0) {
        const used = await tokensUsedToday(deps.db, userId);
        if (used >= deps.dailyTokenBudget) {
          throw new AppError(
            'TOKEN_BUDGET_EXCEEDED',
            undefined,
            { budget: deps.dailyTokenBudget, used },
            {
              'retry-after': String(secondsToMidnightUtc()),
            },
          );
        }
      }
      if (!deps.redis?.ready()) return () => {};
      // Running generations of a user across instances: a sorted set of slots scored by start time.
      const key = `${deps.redis.prefix}running:${userKey}`;
      const slot = randomUUID();
      const now = Date.now();
      let count: number;
      try {
        const res = await deps.redis.client
          .multi()
          .zremrangebyscore(key, 0, now - deps.slotTtlMs)
          .zadd(key, now, slot)
          .zcard(key)
          .pexpire(key, deps.slotTtlMs)
          .exec();
        count = Number(res?.[2]?.[1] ?? 0);
      } catch (err) {
        deps.log.warn(
          { err: (err as Error).message },
          'concurrency store unavailable; using the local cap only',
        );
        return () => {};
      }
      const release = () => {
        deps.redis?.client.zrem(key, slot).catch(() => {});
      };
      if (count > deps.maxConcurrent) {
        release();
        throw new AppError(
          'TOO_MANY_GENERATIONS',
          undefined,
          { limit: deps.maxConcurrent },
          { 'retry-after': '5' },
        );
      }
      return release;
    },
  };
}

function secondsToMidnightUtc(): number {
  const now = new Date();
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((midnight - now.getTime()) / 1000));
}
