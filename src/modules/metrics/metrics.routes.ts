// GET /metrics (Prometheus text format, optionally behind METRICS_TOKEN) and the hooks that time requests.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { errorBackend, type Metrics } from './metrics.js';

export interface MetricsRoutesOptions {
  metrics: Metrics;
  /** When set, scrapes must send `Authorization: Bearer <token>`. */
  token?: string;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

const kTiming = Symbol('requestTiming');
type Timed = FastifyReply['raw'] & { [kTiming]?: { request: FastifyRequest; start: number } };

/** Adds the timing and error hooks on the ROOT instance (call directly, not through register). */
export function registerMetricsHooks(app: FastifyInstance, metrics: Metrics): void {
  // 'close' fires for every response, including hijacked streams, which skip onResponse. One
  // listener for all responses, the request and start time kept on the response itself: a held
  // stream (minutes) keeps no closure, context or `once` wrapper of its own.
  function observe(this: Timed) {
    const timing = this[kTiming];
    if (!timing) return;
    this[kTiming] = undefined;
    const { request, start } = timing;
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeRequest(request.method, route, this.statusCode, (performance.now() - start) / 1000);
  }
  // Callback hooks, not async ones: a promise and a microtask per request each, for nothing.
  app.addHook('onRequest', (request, reply, done) => {
    const raw = reply.raw as Timed;
    raw[kTiming] = { request, start: performance.now() };
    raw.on('close', observe);
    done();
  });
  app.addHook('onError', async (_request, _reply, error) => {
    const backend = errorBackend(error);
    if (backend === 'postgres') metrics.postgresError('request');
    else if (backend === 'redis') metrics.redisError('request');
  });
}

export async function metricsRoutes(app: FastifyInstance, opts: MetricsRoutesOptions) {
  const expected = opts.token ? digest(opts.token) : null;
  app.get(
    '/metrics',
    {
      logLevel: 'warn',
      // The scrape token is not a JWT: the auth hook must not try to verify it.
      config: { verifyJwt: false },
      schema: {
        operationId: 'getMetrics',
        summary: 'Métricas Prometheus / Prometheus metrics',
        description:
          'Prometheus text exposition: request durations by route, chat turns by outcome, time to first chunk, running generations, checkpoints, final-write retries, Postgres and Redis errors, investigation jobs, Node process metrics. Requires `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set.',
        tags: ['operations'],
        security: [{}, { metricsToken: [] }],
        response: { 200: z.string().describe('Prometheus text format 0.0.4') },
      },
    },
    async (request, reply) => {
      if (expected) {
        const header = request.headers.authorization ?? '';
        const match = /^bearer\s+(.+)$/i.exec(header.trim());
        if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected)) {
          reply.header('www-authenticate', 'Bearer realm="metrics"');
          throw new AppError('UNAUTHORIZED', 'A valid metrics token is required.');
        }
      }
      const body = await opts.metrics.registry.metrics();
      return reply.type(opts.metrics.registry.contentType).send(body);
    },
  );
}
