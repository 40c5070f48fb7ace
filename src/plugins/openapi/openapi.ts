// The OpenAPI 3.1 document, generated from the routes' zod schemas (@fastify/swagger), and /docs (Swagger UI).
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { OpenAPIV3_1 } from 'openapi-types';
import { z } from 'zod';
import { errorEnvelopeSchema } from './events.js';
import { deriveOperationId, type OperationDoc, operationKey, operations } from './operations.js';

type SwaggerTransform = Parameters<typeof jsonSchemaTransform>[0];
type JsonSchema = Record<string, unknown>;

const ERROR_MARK = 'x-error-envelope';
const ERROR_REF = '#/components/schemas/ErrorEnvelope';

const RATE_HEADERS = {
  'x-ratelimit-limit': {
    type: 'integer',
    description: 'Requests allowed in the window (per user, else per IP)',
  },
  'x-ratelimit-remaining': { type: 'integer', description: 'Requests left in the window' },
  'x-ratelimit-reset': { type: 'integer', description: 'Seconds until the window resets' },
};

const ERRORS: Record<number, string> = {
  400: 'Malformed request (e.g. a body that is not JSON): INVALID_JSON, BAD_REQUEST',
  401: 'The bearer token is invalid or expired (INVALID_TOKEN); WWW-Authenticate: Bearer error="invalid_token"',
  404: 'Not found, deleted, or owned by someone else (never says which)',
  409: 'Conflict with the current state (e.g. not running, still running, Idempotency-Key reused)',
  413: 'The body is too large',
  415: 'Unsupported Content-Type',
  422: 'Validation failed: details lists each issue as {path, message}',
  429: 'Rate limited or too many replies at once; Retry-After says when to retry',
  503: 'A dependency is down, the identity provider is unreachable, or the server is restarting; Retry-After',
};

/** An error response whose schema transformObject swaps for a $ref to the one ErrorEnvelope. */
function errorResponse(status: number): JsonSchema {
  const response: JsonSchema = {
    description: ERRORS[status],
    content: { 'application/json': { schema: { [ERROR_MARK]: true } } },
  };
  if (status === 429 || status === 503) {
    response.headers = { 'retry-after': { type: 'integer', description: 'Seconds to wait before retrying' } };
  }
  return response;
}

const isZod = (v: unknown) => typeof v === 'object' && v !== null && '_zod' in v;

function routeOf(doc: SwaggerTransform): RouteOptions {
  return (doc as unknown as { route: RouteOptions }).route;
}

/** Per route: documentation defaults, then the zod → JSON Schema conversion, then errors and headers. */
function transform(doc: SwaggerTransform) {
  const route = routeOf(doc);
  const method = Array.isArray(route.method) ? route.method[0]! : route.method;
  const schema = { ...((doc.schema as JsonSchema | undefined) ?? {}) };
  if (schema.hide) return jsonSchemaTransform({ ...doc, schema });
  const meta: OperationDoc | undefined = operations[operationKey(method, doc.url)];
  const isApi = doc.url.startsWith('/api/');

  schema.operationId ??= meta?.operationId ?? deriveOperationId(method, doc.url);
  // An undocumented route still gets a summary: its method and path.
  schema.summary ??= meta?.summary ?? `${method} ${doc.url}`;
  if (meta?.description) schema.description ??= meta.description;
  schema.tags ??= meta?.tags ?? [isApi ? (doc.url.split('/')[3] ?? 'api') : 'operations'];
  if (meta?.headers && !schema.headers) schema.headers = meta.headers;
  // A stream is declared as a string described 'text/event-stream' (the body is never serialized);
  // the document shows the media type and, where known, the union of the events' JSON.
  const declared = (schema.response as Record<string, unknown> | undefined)?.[200];
  const isStream = isZod(declared) && (declared as z.ZodType).description === 'text/event-stream';
  if ((meta?.sse && !schema.response) || isStream) {
    schema.response = {
      ...(schema.response as object),
      200: {
        description: 'Server-Sent Events',
        content: { 'text/event-stream': { schema: meta?.sse ?? z.string() } },
      },
    };
  }
  if (!schema.security) {
    schema.security = isApi && meta?.auth !== 'none' ? [{}, { bearerAuth: [] }] : [];
  }

  // Schemas that are not zod (a plugin's JSON Schema) go into the document as they are.
  const raw: JsonSchema = {};
  for (const part of ['body', 'querystring', 'params', 'headers'] as const) {
    if (schema[part] !== undefined && !isZod(schema[part])) {
      raw[part] = schema[part];
      delete schema[part];
    }
  }
  const out = jsonSchemaTransform({ ...doc, schema }) as { schema: JsonSchema; url: string };
  Object.assign(out.schema, raw);

  const response = { ...((out.schema.response as Record<string, JsonSchema> | undefined) ?? {}) };
  if (!Object.keys(response).some((code) => code.startsWith('2'))) {
    const status = meta?.status ?? 200;
    response[status] = status === 204 ? { type: 'null', description: 'No content' } : { description: 'OK' };
  }
  // Settings on the route, or a class the rate-limit plugin turns into settings.
  const config = route.config as { rateLimit?: unknown; rateLimitClass?: unknown } | undefined;
  const limited = Boolean(config?.rateLimit || config?.rateLimitClass);
  if (limited) {
    for (const [code, r] of Object.entries(response)) {
      if (code.startsWith('2'))
        response[code] = { ...r, headers: { ...(r.headers as object), ...RATE_HEADERS } };
    }
  }
  const hasInput = ['body', 'querystring', 'params', 'headers'].some((p) => out.schema[p] !== undefined);
  const hasBody = ['POST', 'PUT', 'PATCH'].includes(method) && out.schema.body !== undefined;
  const codes = [
    ...(hasBody ? [400, 413, 415] : []),
    ...(isApi ? [401] : []),
    ...(doc.url.includes(':') ? [404] : []),
    ...(meta?.conflict ? [409] : []),
    ...(hasInput ? [422] : []),
    ...(limited ? [429] : []),
    ...(isApi ? [503] : []),
  ];
  // Every error goes through one handler (errors.ts), so every error response is the one envelope.
  for (const code of Object.keys(response))
    if (Number(code) >= 400) response[code] = errorResponse(Number(code));
  for (const code of codes) response[code] ??= errorResponse(code);
  out.schema.response = response;
  return out;
}

/** Replaces every marked error schema with a reference to the one ErrorEnvelope component. */
function linkErrors(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'schema' && value && typeof value === 'object' && (value as JsonSchema)[ERROR_MARK]) {
      (node as JsonSchema).schema = { $ref: ERROR_REF };
    } else linkErrors(value);
  }
}

export interface OpenApiOptions {
  version: string;
}

export async function registerOpenApi(app: FastifyInstance, opts: OpenApiOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Cidadão.AI API',
        version: opts.version,
        description:
          'Streamed, persisted chat with transparency agents, and investigations over public contracts. ' +
          'Send `Authorization: Bearer <access token>` when logged in; without it the caller is anonymous. ' +
          'Every error is the ErrorEnvelope. Try it in the [playground](/playground).',
      },
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'A Supabase access token, or one from `npm run token -- <user>` (JWT_SECRET)',
          },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when configured' },
        },
        schemas: {
          ErrorEnvelope: z.toJSONSchema(errorEnvelopeSchema, {
            target: 'draft-2020-12',
          }) as OpenAPIV3_1.SchemaObject,
        },
      },
      tags: [
        { name: 'chat', description: 'Turns, streams, stop and resume' },
        { name: 'sessions', description: 'Sessions and history' },
        { name: 'investigations', description: 'Anomaly detection over public contracts' },
        { name: 'operations', description: 'Health, readiness, metrics' },
      ],
    },
    transform,
    transformObject: (doc) => {
      const object = jsonSchemaTransformObject(doc) as OpenAPIV3_1.Document;
      delete (object.components?.schemas?.ErrorEnvelope as JsonSchema | undefined)?.$schema;
      linkErrors(object.paths);
      return object;
    },
  });

  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { persistAuthorization: true, tryItOutEnabled: true, displayOperationId: true },
    uiHooks: {
      // Tools that ask /docs for JSON get the document itself (the old /docs answered JSON).
      onRequest: (request, reply, done) => {
        const path = request.url.split('?')[0];
        const accept = String(request.headers.accept ?? '');
        if (
          (path === '/docs' || path === '/docs/') &&
          !accept.includes('text/html') &&
          accept.includes('json')
        ) {
          reply.send(app.swagger());
          return;
        }
        done();
      },
    },
  });

  app.get('/openapi.json', { schema: { hide: true }, logLevel: 'warn' }, async () => app.swagger());
}
