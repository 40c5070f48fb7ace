// Chooses the test backends once: env URLs first, testcontainers when Docker answers, embedded last.
import { existsSync } from 'node:fs';
import type { TestProject } from 'vitest/node';

export interface Backends {
  databaseUrl: string | null;
  redisUrl: string | null;
  source: { database: string; redis: string };
}

declare module 'vitest' {
  export interface ProvidedContext {
    backends: Backends;
  }
}

async function dockerAnswers(): Promise<boolean> {
  if (!process.env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('docker timeout')), 8000)),
    ]);
    return true;
  } catch {
    return false;
  }
}

export default async function setup(project: TestProject) {
  const stops: Array<() => Promise<unknown>> = [];
  let databaseUrl = process.env.TEST_DATABASE_URL || null;
  let redisUrl = process.env.TEST_REDIS_URL || null;
  const source = {
    database: databaseUrl ? 'TEST_DATABASE_URL' : 'pglite (in memory)',
    redis: redisUrl ? 'TEST_REDIS_URL' : 'in-process stores',
  };
  if ((!databaseUrl || !redisUrl) && (await dockerAnswers())) {
    if (!databaseUrl) {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      const pg = await new PostgreSqlContainer('postgres:17-alpine').start();
      stops.push(() => pg.stop());
      databaseUrl = pg.getConnectionUri();
      source.database = 'testcontainers postgres:17-alpine';
    }
    if (!redisUrl) {
      const { RedisContainer } = await import('@testcontainers/redis');
      const redis = await new RedisContainer('redis:7-alpine').start();
      stops.push(() => redis.stop());
      redisUrl = redis.getConnectionUrl();
      source.redis = 'testcontainers redis:7-alpine';
    }
  }
  console.log(`[test backends] database: ${source.database}; redis: ${source.redis}`);
  project.provide('backends', { databaseUrl, redisUrl, source });
  return async () => {
    for (const stop of stops) await stop();
  };
}
