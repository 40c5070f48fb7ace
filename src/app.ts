// buildApp(deps): wires config, infrastructure and modules into a Fastify instance. Never listens.
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { ZodType } from 'zod';
import type { Config } from './config.js';
import { createDb, type DbHandle } from './db/client.js';
import { migrate, pendingMigrations } from './db/migrate.js';
import { registerErrorHandling } from './errors.js';
import { healthRoutes } from './modules/health/health.routes.js';
import { createRedis, type RedisHandle } from './plugins/redis.js';
import { genReqId, registerSecurity } from './plugins/security.js';
import { VERSION } from './version.js';

export interface AppDeps {
  config: Config;
  /** Database handle; default: created from DATABASE_URL / PGLITE_DIR and closed with the app. */
  db?: DbHandle;
  /** Redis handle, or null for in-process stores; default: from REDIS_URL, closed with the app. */
  redis?: RedisHandle | null;
  /** A pino logger; default: one at LOG_LEVEL writing to stdout. */
  logger?: Logger;
  /** Identifies this process in heartbeats and cross-instance messages. */
  instanceId?: string;
}

export interface AppInfra {
  config: Config;
  db: DbHandle;
  redis: RedisHandle | null;
  instanceId: string;
  /** True once shutdown began: new turns are refused, running ones drain. */
  isDraining(): boolean;
  startDraining(): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    infra: AppInfra;
  }
}

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'request.headers.authorization',
  'authorization',
  'token',
];

export function createLogger(config: Config, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: config.LOG_LEVEL,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      base: { service: 'cidadao-api' },
    },
    destination,
  );
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const logger = deps.logger ?? createLogger(config);
  const ownsDb = !deps.db;
  const db =
    deps.db ??
    (await createDb({
      databaseUrl: config.DATABASE_URL,
      pgliteDir: config.PGLITE_DIR,
      poolMax: config.DATABASE_POOL_MAX,
    }));
  const ownsRedis = deps.redis === undefined;
  const redis =
    deps.redis !== undefined
      ? deps.redis
      : config.REDIS_URL
        ? createRedis(config.REDIS_URL, config.REDIS_KEY_PREFIX, logger)
        : null;

  if (config.MIGRATE_ON_BOOT) {
    const { applied, total } = await migrate(db.db);
    logger.info({ applied, total }, 'migrations up to date');
  } else {
    const pending = await pendingMigrations(db.db);
    if (pending > 0) {
      if (ownsDb) await db.close();
      if (ownsRedis) await redis?.close();
      throw new Error(
        `database schema is behind the code by ${pending} migration(s): run \`npm run migrate\` or set MIGRATE_ON_BOOT=true`,
      );
    }
  }

  const app: FastifyInstance = Fastify({
    // Fastify's logger type is pino's minus a few members; the instance is the same object.
    loggerInstance: logger as FastifyBaseLogger,
    genReqId,
    trustProxy: config.TRUST_PROXY,
    bodyLimit: 1024 * 1024,
    routerOptions: { ignoreTrailingSlash: true },
  });

  let draining = false;
  const infra: AppInfra = {
    config,
    db,
    redis,
    instanceId: deps.instanceId ?? randomUUID(),
    isDraining: () => draining,
    startDraining: () => {
      draining = true;
    },
  };
  app.decorate('infra', infra);

  // Routes declare zod schemas; a failure becomes a 422 with the issues (see errors.ts).
  app.setValidatorCompiler(({ schema }) => (data) => {
    const result = (schema as ZodType).safeParse(data);
    return result.success ? { value: result.data } : { error: result.error };
  });

  registerErrorHandling(app);
  await registerSecurity(app, config.CORS_ORIGINS);

  await app.register(healthRoutes, { db, redis, version: VERSION, isDraining: infra.isDraining });

  app.addHook('onClose', async () => {
    if (ownsRedis) await redis?.close();
    if (ownsDb) await db.close();
  });

  logger.info(`database: ${db.describe}`);
  logger.info(
    `stores (stream log, memory, rate limits): ${redis ? redis.describe : 'in-process (single instance only)'}`,
  );
  return app;
}
