// buildApp(deps): wires config, infrastructure and modules into a Fastify instance. Never listens.
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RouteOptions } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import pino, { type Logger } from 'pino';
import type { Config } from './config.js';
import { createDb, type DbHandle } from './db/client.js';
import { migrate, pendingMigrations, withMigrationLock } from './db/migrate.js';
import { AppError, registerErrorHandling, sendError } from './errors.js';
import { createDescriptorGuard, readNofile } from './lib/descriptors.js';
import { academyRoutes } from './modules/academy/academy.routes.js';
import { createAcademyService } from './modules/academy/academy.service.js';
import { createLessons } from './modules/academy/lessons.js';
import { createOfflineAgent, type TurnModel } from './modules/agents/offline.js';
import { createAdmission } from './modules/chat/admission.js';
import { type ChatModule, createGenerationRegistry, registerChat } from './modules/chat/chat.module.js';
import { createContractSearch } from './modules/chat/contract-search.js';
import { producerAlive } from './modules/generation/generation.repo.js';
import { createRedisMirror, createRemoteGenerations } from './modules/generation/redis-log.js';
import type { GenerationRegistry } from './modules/generation/registry.js';
import { startSweeper } from './modules/generation/sweeper.js';
import { createReplyWriter } from './modules/generation/writer.js';
import { healthRoutes } from './modules/health/health.routes.js';
import { investigationRoutes } from './modules/investigations/investigations.routes.js';
import { createInvestigations } from './modules/investigations/investigations.service.js';
import {
  type ContractSource,
  createPortalSource,
  createSampleSource,
} from './modules/investigations/sources/index.js';
import { createOpenAIProvider } from './modules/llm/openai.js';
import { createMemoryStore } from './modules/memory/memory.js';
import { createMetrics, type Metrics } from './modules/metrics/metrics.js';
import { metricsRoutes, registerMetricsHooks } from './modules/metrics/metrics.routes.js';
import { playgroundRoutes } from './modules/playground/playground.routes.js';
import { authPlugin, describeAuth } from './plugins/auth.js';
import { registerOpenApi } from './plugins/openapi/openapi.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { createRedis, type RedisHandle } from './plugins/redis.js';
import { applyEdgeHeaders, genReqId, securityPlugin } from './plugins/security.js';
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
  /** The model provider; default: OpenAI-compatible when LLM_API_KEY is set, else the offline agent. */
  model?: TurnModel;
  /** Prometheus metrics; default: a fresh registry with Node's process metrics. */
  metrics?: Metrics;
  /** Told about every route as it is registered (route inventories, documentation checks). */
  onRoute?: (route: RouteOptions) => void;
}

export interface AppInfra {
  config: Config;
  db: DbHandle;
  redis: RedisHandle | null;
  instanceId: string;
  /** True once shutdown began: new turns are refused, running ones drain. */
  isDraining(): boolean;
  startDraining(): void;
  generations: GenerationRegistry;
  /** Chat turns and replies, for modules that run chat turns of their own (the academy). */
  chat: ChatModule;
  metrics: Metrics;
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

// Longest path parameter the router matches; ids are at most 128 characters, room left for a 422.
const MAX_PATH_PARAM = 512;

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
      writerConnections: config.DATABASE_WRITER_CONNECTIONS,
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
    trustProxy: trustProxy(config.TRUST_PROXY),
    bodyLimit: 1024 * 1024,
    // Session ids may be 128 characters (API.md §1); longer path parameters are refused by the
    // schemas with our envelope, and past this the router's 414 goes through frameworkErrors.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PATH_PARAM },
    // A bad URL (malformed percent-encoding) or an over-long parameter is answered by the router
    // before any hook: give it the same envelope, request id and CORS headers as every error.
    frameworkErrors: (error, request, reply) => {
      applyEdgeHeaders(config.CORS_ORIGINS, request, reply);
      return sendError(request, reply, error);
    },
    // While draining, requests still get our JSON errors (SHUTTING_DOWN with Retry-After), not Fastify's bare 503.
    return503OnClosing: false,
  });

  const metrics = deps.metrics ?? createMetrics();
  const onRoute = deps.onRoute;
  if (onRoute) app.addHook('onRoute', (route) => onRoute(route));
  let draining = false;
  // `generations` is filled in once the chat module is registered, before the app is ready.
  const infra = {
    config,
    db,
    redis,
    instanceId: deps.instanceId ?? randomUUID(),
    isDraining: () => draining,
    startDraining: () => {
      draining = true;
    },
    metrics,
  } as AppInfra;
  app.decorate('infra', infra);

  // Routes declare zod schemas (fastify-type-provider-zod): requests are validated, a failure is a
  // 422 with the issues (see errors.ts), and responses are checked against their schema when
  // serialized. A request without a body validates as `{}`, so a route that needs one names the
  // missing field; a schema may throw an AppError to answer otherwise (an id that cannot exist is a
  // 404, not a 422).
  app.setValidatorCompiler((route) => {
    const validate = validatorCompiler(route as Parameters<typeof validatorCompiler>[0]);
    return (data) => {
      try {
        return validate(route.httpPart === 'body' && data == null ? {} : data);
      } catch (err) {
        if (err instanceof AppError) return { error: err };
        throw err;
      }
    };
  });
  app.setSerializerCompiler(serializerCompiler);

  // JSON is the only body this API reads by default; text/plain would reach validation as a string.
  app.removeContentTypeParser('text/plain');
  // axios sends `Content-Type: application/json` with an EMPTY body on GET, DELETE and body-less
  // POSTs: an empty body is no body, on every route. Only a non-empty body that is not JSON is 400.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body.length === 0) return done(null, undefined);
    return parseJson(request, body as string, done);
  });
  registerErrorHandling(app);
  // Before any route: the document is built from the routes registered after it.
  await registerOpenApi(app, { version: VERSION });
  registerMetricsHooks(app, metrics);
  await app.register(securityPlugin, { origins: config.CORS_ORIGINS });
  // Every connection error of the command connection (the subscriber and limiter log their own).
  const countRedisError = () => metrics.redisError('connection');
  redis?.client.on('error', countRedisError);

  await app.register(healthRoutes, {
    db,
    redis,
    version: VERSION,
    isDraining: infra.isDraining,
    onDown: (what) =>
      what === 'database' ? metrics.postgresError('readiness') : metrics.redisError('readiness'),
  });
  await app.register(metricsRoutes, { metrics, token: config.METRICS_TOKEN });
  await app.register(playgroundRoutes);

  // Auth runs on every request before any route: an invalid token is a 401, never anonymous.
  await app.register(authPlugin, { config });
  await app.register(rateLimitPlugin, { config, redis, log: logger });

  const model = deps.model ?? defaultModel(config, logger);
  const memory = createMemoryStore({
    redis,
    conversationTtlS: config.MEMORY_CONVERSATION_TTL_S,
    episodicTtlS: config.MEMORY_EPISODIC_TTL_S,
    log: logger,
  });
  const registry = createGenerationRegistry();
  const descriptors = createDescriptorGuard({
    limit: readNofile()?.soft ?? null,
    headroom: config.DESCRIPTOR_HEADROOM,
  });
  infra.generations = registry;
  // Every reply's writes go through one writer, on the database's dedicated writer path if it has one.
  const writer = createReplyWriter({
    db: db.writer?.db ?? db.db,
    lanes: db.writer?.connections ?? 1,
    checkpointMs: config.CHECKPOINT_MS,
    heartbeatMs: config.PRODUCER_HEARTBEAT_MS,
    log: logger,
    metrics: { checkpoint: metrics.turns.checkpoint, writerBatch: metrics.writer.writerBatch },
  });
  metrics.bind({
    runningGenerations: () => registry.running().length,
    writerQueued: writer.queued,
    db: db.db,
  });
  // Three missed heartbeats make a producer dead; a checkpoint stall alone never does.
  const staleAfterMs = Math.max(config.PRODUCER_HEARTBEAT_MS * 3, 1000);
  const remote = redis
    ? await createRemoteGenerations(redis, {
        stopLocal: (id) => registry.stop(id, 'stopped'),
        producerAlive: (id) => producerAlive(db.db, id, staleAfterMs),
        staleMs: staleAfterMs,
        log: logger,
      })
    : null;
  // Investigations exist before chat: a chat turn can open one (and link it to its session).
  const investigations = createInvestigations({
    db,
    config,
    log: logger,
    instanceId: infra.instanceId,
    tuning: { leaseSeconds: config.JOB_LEASE_SECONDS },
  });
  // The stream log's flush also carries the admission's slot releases (one round trip for both).
  const mirror = redis
    ? createRedisMirror(redis, {
        maxLen: config.STREAM_LOG_MAXLEN,
        ttlS: config.STREAM_LOG_TTL_S,
        log: logger,
      })
    : null;
  infra.chat = await registerChat(app, {
    config,
    db,
    log: logger,
    model,
    memory,
    registry,
    writer,
    metrics,
    staleAfterMs,
    instanceId: infra.instanceId,
    isDraining: infra.isDraining,
    remote,
    searchContracts: createContractSearch(
      lazy(() => chatContractSource(config, logger)),
      (userId, sessionId, query) =>
        investigations.service.create(userId, { query, data_source: 'contracts', filters: {}, sessionId }),
    ),
    admission: createAdmission({
      db: db.db,
      redis,
      limiter: app.chatLimiter,
      maxConcurrent: config.MAX_CONCURRENT_GENERATIONS,
      dailyTokenBudget: config.DAILY_TOKEN_BUDGET,
      slotTtlMs: 15 * 60_000,
      removeLater: mirror?.removeLater,
      descriptors,
      log: logger,
    }),
    mirror,
  });
  const sweeper = startSweeper({
    db: db.db,
    intervalMs: config.SWEEPER_INTERVAL_MS,
    staleAfterMs,
    log: logger,
    recover: remote?.recoverText ?? null,
  });

  // The academy: profiles, lessons (chat turns with a teacher), the XP ledger, missions, badges.
  const academy = createAcademyService({ db: db.db });
  await app.register(academyRoutes, {
    prefix: '/api/v1/academy',
    service: academy,
    lessons: createLessons({
      db: db.db,
      academy,
      chat: infra.chat.chat,
      turns: infra.chat.turns,
      replies: infra.chat.replies,
      heartbeatMs: config.SSE_HEARTBEAT_MS,
      onDisconnect: config.GENERATION_ON_DISCONNECT,
    }),
    maxMessageChars: config.CHAT_MAX_MESSAGE_CHARS,
  });

  // Investigations: routes, and the durable job runner (started here, stopped first at shutdown).
  await app.register(investigationRoutes, {
    prefix: '/api/v1/investigations',
    service: investigations.service,
    config,
  });
  // pg-boss creates (or upgrades) its schema and queues at start: under the migration lock, so
  // replicas booting together on an empty database do not race in the catalog.
  await withMigrationLock(db, () => investigations.start());

  // Shutdown: refuse new turns, let running replies finish until the deadline and store the rest
  // as interrupted; at the same time hand running investigation jobs back to the queue.
  app.addHook('preClose', async () => {
    infra.startDraining();
    await Promise.all([
      // Replies end (their final writes committed or given up), then nothing is left in the writer.
      infra.generations.drain(config.SHUTDOWN_GRACE_MS).then(() => writer.drain()),
      investigations.stop(),
    ]);
  });

  app.addHook('onClose', async () => {
    writer.close();
    sweeper.stop();
    descriptors.stop();
    redis?.client.off('error', countRedisError);
    await remote?.close();
    if (ownsRedis) await redis?.close();
    if (ownsDb) await db.close();
  });

  logger.info(`database: ${db.describe}`);
  logger.info(
    `stores (stream log, memory, rate limits): ${redis ? redis.describe : 'in-process (single instance only)'}`,
  );
  logger.info(`model: ${model.describe}`);
  logger.info(describeAuth(config));
  return app;
}

/** Contracts the chat searches: the Portal (a bounded scan) with a key, else the bundled sample. */
function chatContractSource(config: Config, logger: Logger): ContractSource {
  if (!config.TRANSPARENCY_API_KEY) return createSampleSource();
  const portal = createPortalSource({
    baseUrl: config.TRANSPARENCY_API_BASE_URL,
    apiKey: config.TRANSPARENCY_API_KEY,
    log: logger,
  });
  // A chat turn cannot page through the whole Portal: it searches the most recent records only.
  return { ...portal, pages: (filters, signal) => portal.pages({ ...filters, max_records: 300 }, signal) };
}

/** Trusts the first `hops` proxies from the socket inward (a count), or all / none. */
function trustProxy(setting: boolean | number): boolean | ((address: string, hop: number) => boolean) {
  if (typeof setting === 'boolean') return setting;
  return (_address, hop) => hop < setting;
}

function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= make();
    return value;
  };
}

function defaultModel(config: Config, logger: Logger): TurnModel {
  if (!config.LLM_API_KEY) return createOfflineAgent();
  return createOpenAIProvider({
    baseUrl: config.LLM_BASE_URL,
    apiKey: config.LLM_API_KEY,
    model: config.LLM_MODEL,
    agentModels: config.LLM_AGENT_MODELS,
    connectTimeoutMs: config.LLM_CONNECT_TIMEOUT_MS,
    idleTimeoutMs: config.LLM_IDLE_TIMEOUT_MS,
    maxTokens: config.LLM_MAX_TOKENS,
    http2: config.LLM_HTTP2,
    log: logger,
  });
}
