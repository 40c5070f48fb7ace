// CORS from CORS_ORIGINS, request ids honoured from the edge and echoed back.
import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import type { FastifyReply, FastifyRequest, RawRequestDefaultExpression } from 'fastify';
import fp from 'fastify-plugin';

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Railway's edge id first, then a caller's X-Request-Id, else a fresh UUID. */
export function genReqId(req: RawRequestDefaultExpression): string {
  for (const name of ['x-railway-request-id', 'x-request-id']) {
    const v = req.headers[name];
    if (typeof v === 'string' && SAFE_ID.test(v)) return v;
  }
  return randomUUID();
}

// Browsers send Access-Control-Request-Headers lowercase, comma-separated, with no space.
export const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'accept',
  'idempotency-key',
  'last-event-id',
  'x-request-id',
  'cache-control',
];
export const EXPOSED_HEADERS = [
  'x-request-id',
  'retry-after',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'www-authenticate',
];

const EXPOSED_HEADER_LIST = EXPOSED_HEADERS.join(', ');

/**
 * The CORS and request-id headers of an answer the router gives before any hook runs (a bad URL,
 * a path parameter over the router's limit): same rules as @fastify/cors applies to every route.
 */
export function applyEdgeHeaders(origins: string[], request: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-request-id', request.id);
  const origin = request.headers.origin;
  if (typeof origin !== 'string') return;
  const any = origins.includes('*');
  if (!any && !origins.includes(origin)) return;
  reply.header('access-control-allow-origin', origin);
  reply.header('access-control-allow-credentials', 'true');
  reply.header('access-control-expose-headers', EXPOSED_HEADER_LIST);
  reply.header('vary', 'Origin');
}

/** Request ids on responses and CORS, for every route of the app that registers it. */
export const securityPlugin = fp<{ origins: string[] }>(
  async (app, { origins }) => {
    app.addHook('onRequest', (request, reply, done) => {
      reply.header('x-request-id', request.id);
      done();
    });
    await app.register(cors, {
      origin: origins.includes('*') ? true : origins,
      credentials: true,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS'],
      allowedHeaders: ALLOWED_HEADERS,
      // One string for every answer: a list would be joined per request, into a string each
      // held stream keeps (in its header object) for its whole life.
      exposedHeaders: EXPOSED_HEADER_LIST,
      maxAge: 600,
      // A preflight without Access-Control-Request-Method is still answered, not 400'd.
      strictPreflight: false,
    });
  },
  { name: 'security' },
);
