// Redis through ioredis: short per-request retries, errors logged (not thrown), clean quit on close.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { throttle, withTimeout } from '../lib/async.js';

export interface RedisHandle {
  client: Redis;
  /** Every key and channel this app uses starts with it, so instances and tests can share a server. */
  prefix: string;
  describe: string;
  /** A second connection in subscriber mode (pub/sub cannot share the command connection). */
  subscriber(): Redis;
  ping(timeoutMs?: number): Promise<void>;
  /** Connected right now; callers skip optional Redis work instead of waiting on a reconnect. */
  ready(): boolean;
  close(): Promise<void>;
}

export function createRedis(url: string, prefix: string, log: Logger): RedisHandle {
  const options = {
    // Fail a command fast when Redis is away instead of queueing it for minutes: callers fall back.
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
    lazyConnect: false,
  };
  const client = new Redis(url, options);
  const extra: Redis[] = [];
  // A down Redis emits an error per reconnect attempt; one line per 10 s is enough.
  const shouldLog = throttle(10_000);
  const onError = (err: Error) => {
    if (shouldLog()) log.warn({ err: err.message }, 'redis connection error');
  };
  client.on('error', onError);
  const u = new URL(url);
  return {
    client,
    prefix,
    describe: `redis ${u.hostname}:${u.port || 6379}${u.pathname !== '/' ? u.pathname : ''}`,
    subscriber() {
      const sub = client.duplicate({ commandTimeout: undefined });
      sub.on('error', onError);
      extra.push(sub);
      return sub;
    },
    async ping(timeoutMs = 1000) {
      await withTimeout(client.ping(), timeoutMs, 'redis ping timed out');
    },
    ready: () => client.status === 'ready',
    async close() {
      await Promise.all(
        [client, ...extra].map(async (c) => {
          try {
            await c.quit();
          } catch {
            c.disconnect();
          }
        }),
      );
    },
  };
}
