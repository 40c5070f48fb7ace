// Per-file isolated backends: a fresh migrated database and a unique Redis key prefix.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { inject } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { createRedis, type RedisHandle } from '../../src/plugins/redis.js';

export const backends = () => inject('backends');

export interface TestDb {
  handle: DbHandle;
  /** The isolated database's URL (null on PGlite). */
  url: string | null;
  drop(): Promise<void>;
}

/** A new, migrated database for one test file; dropped by `drop()`. */
export async function createTestDb(): Promise<TestDb> {
  const { databaseUrl } = backends();
  if (!databaseUrl) {
    const handle = await createDb({ inMemory: true });
    await migrate(handle.db);
    return { handle, url: null, drop: () => handle.close() };
  }
  const name = `t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(databaseUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const handle = await createDb({ databaseUrl: url, poolMax: 10 });
  await migrate(handle.db);
  return {
    handle,
    url,
    async drop() {
      await handle.close().catch(() => {});
      const a = new pg.Client({ connectionString: databaseUrl });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

/** A Redis handle with a unique key prefix, or null when tests run on in-process stores. */
export function createTestRedis(): RedisHandle | null {
  const { redisUrl } = backends();
  if (!redisUrl) return null;
  return createRedis(redisUrl, `test:${randomBytes(4).toString('hex')}:`, pino({ level: 'silent' }));
}

export const silentLogger = () => pino({ level: 'silent' });
