// Liveness (no I/O), readiness (Postgres and Redis), and the root document.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DbHandle } from '../../db/client.js';
import { errorBody } from '../../errors.js';
import { withTimeout } from '../../lib/async.js';
import type { RedisHandle } from '../../plugins/redis.js';

async function check(work: () => Promise<void>, timeoutMs: number): Promise<'up' | 'down'> {
  try {
    await withTimeout(work(), timeoutMs, 'timeout');
    return 'up';
  } catch {
    return 'down';
  }
}

export interface HealthDeps {
  db: Pick<DbHandle, 'ping'>;
  redis: Pick<RedisHandle, 'ping'> | null;
  version: string;
  isDraining: () => boolean;
}

const checksSchema = z.object({
  database: z.enum(['up', 'down']),
  redis: z.enum(['up', 'down', 'in-process']),
  accepting_turns: z.boolean(),
});
const errorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
  request_id: z.string(),
});

export const healthRoutes: FastifyPluginAsyncZod<HealthDeps> = async (app, deps) => {
  app.get(
    '/health',
    { logLevel: 'warn', schema: { response: { 200: z.object({ status: z.literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );

  const ready = { 200: z.object({ status: z.literal('ready'), checks: checksSchema }), 503: errorBodySchema };
  app.get('/health/ready', { logLevel: 'warn', schema: { response: ready } }, async (request, reply) => {
    const [database, redis] = await Promise.all([
      check(() => deps.db.ping(), 2000),
      deps.redis ? check(() => deps.redis!.ping(1000), 1000) : Promise.resolve('in-process' as const),
    ]);
    const checks = { database, redis, accepting_turns: !deps.isDraining() };
    const down: string[] = Object.entries({ database, redis })
      .filter(([, v]) => v === 'down')
      .map(([k]) => k);
    if (deps.isDraining()) down.push('this instance (draining for shutdown)');
    if (down.length === 0) return { status: 'ready' as const, checks };
    return reply
      .code(503)
      .send(
        errorBody(
          request.id,
          'NOT_READY',
          `Not ready: ${down.join(' and ')} ${down.length > 1 ? 'are' : 'is'} down`,
          { checks },
        ),
      );
  });

  const root = z.object({
    name: z.string(),
    version: z.string(),
    description: z.string(),
    links: z.record(z.string(), z.string()),
  });
  app.get('/', { schema: { response: { 200: root } } }, async () => ({
    name: 'cidadao-api',
    version: deps.version,
    description: 'Cidadão.AI API: streamed, persisted chat with transparency agents and investigations',
    links: { docs: '/docs', health: '/health', ready: '/health/ready', agents: '/api/v1/chat/agents' },
  }));
};
