// One error model: AppError + a catalogue of codes + the one handler that renders them.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ZodError } from 'zod';
import { findOutage, OUTAGE_RETRY_AFTER_S } from './lib/outage.js';

export const errorCatalogue = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed.' },
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON.' },
  UNAUTHORIZED: { status: 401, message: 'Authentication failed.' },
  INVALID_TOKEN: { status: 401, message: 'The access token is invalid or expired.' },
  FORBIDDEN: { status: 403, message: 'Not allowed.' },
  NOT_FOUND: { status: 404, message: 'Not found.' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route.' },
  SESSION_NOT_FOUND: { status: 404, message: 'Session not found.' },
  MESSAGE_NOT_FOUND: { status: 404, message: 'Message not found.' },
  INVESTIGATION_NOT_FOUND: { status: 404, message: 'Investigation not found.' },
  CONFLICT: { status: 409, message: 'Conflict.' },
  IDEMPOTENCY_CONFLICT: { status: 409, message: 'This Idempotency-Key was used with a different request.' },
  MESSAGE_NOT_RUNNING: { status: 409, message: 'The message is not being generated.' },
  INVESTIGATION_RUNNING: { status: 409, message: 'The investigation is still running.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported Content-Type; send application/json.' },
  VALIDATION_ERROR: { status: 422, message: 'The request is invalid.' },
  UNKNOWN_AGENT: { status: 422, message: 'Unknown agent.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry later.' },
  TOO_MANY_GENERATIONS: {
    status: 429,
    message: 'Too many replies are being generated at once; wait for one to finish.',
  },
  TOKEN_BUDGET_EXCEEDED: { status: 429, message: 'The daily token budget is used up.' },
  INTERNAL_ERROR: { status: 500, message: 'Internal server error.' },
  GENERATION_FAILED: { status: 503, message: 'The reply could not be generated; retry shortly.' },
  NOT_READY: { status: 503, message: 'A dependency is unavailable.' },
  DEPENDENCY_UNAVAILABLE: {
    status: 503,
    message: 'The database or cache is briefly unavailable; retry shortly.',
  },
  AUTH_UNAVAILABLE: { status: 503, message: 'The identity provider could not be reached; retry shortly.' },
  SHUTTING_DOWN: { status: 503, message: 'The server is restarting; retry shortly.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message ?? errorCatalogue[code].message);
    this.status = errorCatalogue[code].status;
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
  request_id: string;
}

export function errorBody(requestId: string, code: string, message: string, details?: unknown): ErrorBody {
  return {
    error: details === undefined ? { code, message } : { code, message, details },
    request_id: requestId,
  };
}

export function zodIssues(err: ZodError) {
  return err.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

// Fastify's own client errors, mapped onto our catalogue.
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_VALIDATION: 'VALIDATION_ERROR',
};

function classify(error: FastifyError | Error): {
  status: number;
  code: string;
  message: string;
  details?: unknown;
  outage?: { code?: string; message: string };
} {
  if (error instanceof AppError) {
    return { status: error.status, code: error.code, message: error.message, details: error.details };
  }
  // A route schema rejected the request (fastify-type-provider-zod's validator): the same 422 as a ZodError.
  if (hasZodFastifySchemaValidationErrors(error)) {
    return {
      status: 422,
      code: 'VALIDATION_ERROR',
      message: 'The request is invalid.',
      details: error.validation.map((v) => ({
        path: v.instancePath.slice(1).replaceAll('/', '.'),
        message: v.message,
      })),
    };
  }
  if (error instanceof ZodError) {
    return {
      status: 422,
      code: 'VALIDATION_ERROR',
      message: 'The request is invalid.',
      details: zodIssues(error),
    };
  }
  const fe = error as FastifyError;
  const mapped = fe.code ? fastifyCodes[fe.code] : undefined;
  if (mapped)
    return { status: errorCatalogue[mapped].status, code: mapped, message: errorCatalogue[mapped].message };
  if (error instanceof SyntaxError && (fe.statusCode === 400 || /JSON/.test(error.message))) {
    return { status: 400, code: 'INVALID_JSON', message: errorCatalogue.INVALID_JSON.message };
  }
  if (fe.statusCode === 429) {
    return { status: 429, code: 'RATE_LIMITED', message: errorCatalogue.RATE_LIMITED.message };
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, code: 'BAD_REQUEST', message: errorCatalogue.BAD_REQUEST.message };
  }
  // A database or Redis that is restarting or failing over: retry, not a bug (see lib/outage.ts).
  const outage = findOutage(error);
  if (outage) {
    const { status, message } = errorCatalogue.DEPENDENCY_UNAVAILABLE;
    return { status, code: 'DEPENDENCY_UNAVAILABLE', message, outage };
  }
  return { status: 500, code: 'INTERNAL_ERROR', message: errorCatalogue.INTERNAL_ERROR.message };
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: FastifyError | Error) {
  const { status, code, message, details, outage } = classify(error);
  if (outage) {
    // Expected while a dependency restarts: one warning per request, no stack.
    request.log.warn({ code, cause: outage }, 'dependency unavailable');
    reply.header('retry-after', String(OUTAGE_RETRY_AFTER_S));
  } else if (status >= 500 && !(error instanceof AppError)) {
    request.log.error({ err: error }, 'request failed');
  } else if (status >= 500) {
    request.log.warn({ code }, message);
  }
  if (error instanceof AppError && error.headers) reply.headers(error.headers);
  if (status === 401 && code === 'INVALID_TOKEN') {
    reply.header('www-authenticate', 'Bearer error="invalid_token"');
  }
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send(errorBody(request.id, code, message, details));
}

export function registerErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error as FastifyError));
  app.setNotFoundHandler((request, reply) =>
    sendError(
      request,
      reply,
      new AppError('ROUTE_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`),
    ),
  );
}
