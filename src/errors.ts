// One error model: AppError + a catalogue of codes + the one handler that renders them.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ZodError } from 'zod';
import { findOutage, OUTAGE_RETRY_AFTER_S } from './lib/outage.js';

export const errorCatalogue = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed.', detail: 'A requisição está malformada.' },
  INVALID_JSON: {
    status: 400,
    message: 'The request body is not valid JSON.',
    detail: 'O corpo da requisição não é um JSON válido.',
  },
  UNAUTHORIZED: { status: 401, message: 'Authentication failed.', detail: 'Falha na autenticação.' },
  INVALID_TOKEN: {
    status: 401,
    message: 'The access token is invalid or expired.',
    detail: 'Sua sessão expirou ou é inválida. Entre novamente.',
  },
  FORBIDDEN: { status: 403, message: 'Not allowed.', detail: 'Você não tem permissão para isso.' },
  LEVEL_TOO_LOW: {
    status: 403,
    message: 'Seu nivel ainda nao permite esta missao.',
    detail: 'Seu nivel ainda nao permite esta missao.',
  },
  PREREQUISITES_MISSING: {
    status: 403,
    message: 'Complete as missoes pre-requisito primeiro.',
    detail: 'Complete as missoes pre-requisito primeiro.',
  },
  NOT_FOUND: { status: 404, message: 'Not found.', detail: 'Não encontrado.' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route.', detail: 'Endereço não encontrado.' },
  SESSION_NOT_FOUND: { status: 404, message: 'Session not found.', detail: 'Conversa não encontrada.' },
  MESSAGE_NOT_FOUND: { status: 404, message: 'Message not found.', detail: 'Mensagem não encontrada.' },
  INVESTIGATION_NOT_FOUND: {
    status: 404,
    message: 'Investigation not found.',
    detail: 'Investigação não encontrada.',
  },
  ACADEMY_USER_NOT_FOUND: {
    status: 404,
    message: 'Perfil nao encontrado. Cadastre-se primeiro.',
    detail: 'Perfil nao encontrado. Cadastre-se primeiro.',
  },
  TEACHER_NOT_FOUND: {
    status: 404,
    message: 'Professor nao encontrado.',
    detail: 'Professor nao encontrado.',
  },
  CONVERSATION_NOT_FOUND: {
    status: 404,
    message: 'Conversa nao encontrada.',
    detail: 'Conversa nao encontrada.',
  },
  MISSION_NOT_FOUND: { status: 404, message: 'Missao nao encontrada.', detail: 'Missao nao encontrada.' },
  CONFLICT: { status: 409, message: 'Conflict.', detail: 'A operação conflita com o estado atual.' },
  IDEMPOTENCY_CONFLICT: {
    status: 409,
    message: 'This Idempotency-Key was used with a different request.',
    detail: 'Esta chave de idempotência já foi usada com outra requisição.',
  },
  MESSAGE_NOT_RUNNING: {
    status: 409,
    message: 'The message is not being generated.',
    detail: 'Esta resposta não está sendo gerada.',
  },
  INVESTIGATION_RUNNING: {
    status: 409,
    message: 'The investigation is still running.',
    detail: 'A investigação ainda está em andamento.',
  },
  ALREADY_ENROLLED: {
    status: 409,
    message: 'Usuario ja cadastrado na Academy.',
    detail: 'Usuario ja cadastrado na Academy.',
  },
  CONVERSATION_COMPLETED: {
    status: 409,
    message: 'Esta conversa ja foi concluida.',
    detail: 'Esta conversa ja foi concluida.',
  },
  MISSION_ALREADY_STARTED: { status: 409, message: 'Missao ja iniciada.', detail: 'Missao ja iniciada.' },
  MISSION_ALREADY_COMPLETED: { status: 409, message: 'Missao ja concluida.', detail: 'Missao ja concluida.' },
  MISSION_NOT_STARTED: {
    status: 409,
    message: 'Inicie a missao antes de concluir.',
    detail: 'Inicie a missao antes de concluir.',
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    message: 'The request body is too large.',
    detail: 'O corpo da requisição é grande demais.',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'Unsupported Content-Type; send application/json.',
    detail: 'Tipo de conteúdo não suportado; envie application/json.',
  },
  URI_TOO_LONG: {
    status: 414,
    message: 'The request URI is too long.',
    detail: 'O endereço da requisição é longo demais.',
  },
  VALIDATION_ERROR: { status: 422, message: 'The request is invalid.', detail: 'A requisição é inválida.' },
  UNKNOWN_AGENT: { status: 422, message: 'Unknown agent.', detail: 'Agente desconhecido.' },
  UNSUPPORTED_TRIGGER: {
    status: 422,
    message: 'Only the submit-message trigger is supported.',
    detail: 'Só é possível enviar uma nova mensagem (regenerar respostas ainda não é suportado).',
  },
  RATE_LIMITED: {
    status: 429,
    message: 'Too many requests; retry later.',
    detail: 'Muitas requisições; tente novamente em instantes.',
  },
  TOO_MANY_GENERATIONS: {
    status: 429,
    message: 'Too many replies are being generated at once; wait for one to finish.',
    detail: 'Há respostas demais sendo geradas ao mesmo tempo; aguarde uma terminar.',
  },
  TOKEN_BUDGET_EXCEEDED: {
    status: 429,
    message: 'The daily token budget is used up.',
    detail: 'O limite diário de uso foi atingido.',
  },
  INTERNAL_ERROR: {
    status: 500,
    message: 'Internal server error.',
    detail: 'Erro interno do servidor. Tente novamente.',
  },
  GENERATION_FAILED: {
    status: 503,
    message: 'The reply could not be generated; retry shortly.',
    detail: 'Não foi possível gerar a resposta; tente novamente em instantes.',
  },
  NOT_READY: {
    status: 503,
    message: 'A dependency is unavailable.',
    detail: 'Um serviço necessário está indisponível.',
  },
  DEPENDENCY_UNAVAILABLE: {
    status: 503,
    message: 'The database or cache is briefly unavailable; retry shortly.',
    detail: 'Um serviço interno está indisponível por instantes; tente novamente.',
  },
  AUTH_UNAVAILABLE: {
    status: 503,
    message: 'The identity provider could not be reached; retry shortly.',
    detail: 'Não foi possível verificar seu acesso agora; tente novamente em instantes.',
  },
  AT_CAPACITY: {
    status: 503,
    message: 'The server is holding as many replies as it can; retry shortly.',
    detail: 'O servidor está no limite de respostas simultâneas; tente novamente em instantes.',
  },
  SHUTTING_DOWN: {
    status: 503,
    message: 'The server is restarting; retry shortly.',
    detail: 'O servidor está reiniciando; tente novamente em instantes.',
  },
} as const satisfies Record<string, { status: number; message: string; detail: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  /** The user-presentable Portuguese message; defaults to the catalogue's. */
  detail: string;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message ?? errorCatalogue[code].message);
    this.status = errorCatalogue[code].status;
    this.detail = errorCatalogue[code].detail;
  }

  /** Sets the Portuguese message the frontend shows (top-level `detail`). */
  withDetail(detail: string): this {
    this.detail = detail;
    return this;
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
  /** The user-presentable Portuguese message: the frontend shows a top-level `detail` or `message`. */
  detail: string;
  request_id: string;
}

export function errorBody(
  requestId: string,
  code: string,
  message: string,
  details?: unknown,
  detail?: string,
): ErrorBody {
  const known = (errorCatalogue as Record<string, { detail: string }>)[code];
  return {
    error: details === undefined ? { code, message } : { code, message, details },
    detail: detail ?? known?.detail ?? message,
    request_id: requestId,
  };
}

export function zodIssues(err: ZodError) {
  return err.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

/** "A requisição é inválida: verifique message, context." — names the fields, in the user's language. */
export function validationDetail(issues: Array<{ path: string }>): string {
  const fields = [...new Set(issues.map((i) => i.path).filter(Boolean))].slice(0, 5);
  return fields.length > 0
    ? `A requisição é inválida: verifique ${fields.join(', ')}.`
    : errorCatalogue.VALIDATION_ERROR.detail;
}

// Fastify's own client errors, mapped onto our catalogue.
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_VALIDATION: 'VALIDATION_ERROR',
  FST_ERR_BAD_URL: 'BAD_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'URI_TOO_LONG',
  FST_ERR_ASYNC_CONSTRAINT: 'BAD_REQUEST',
};

interface Classified {
  status: number;
  code: string;
  message: string;
  details?: unknown;
  detail?: string;
  outage?: { code?: string; message: string };
}

function classify(error: FastifyError | Error): Classified {
  if (error instanceof AppError) {
    return {
      status: error.status,
      code: error.code,
      message: error.message,
      details: error.details,
      detail: error.detail,
    };
  }
  // A route schema rejected the request (fastify-type-provider-zod's validator): the same 422 as a ZodError.
  if (hasZodFastifySchemaValidationErrors(error)) {
    const details = error.validation.map((v) => ({
      path: v.instancePath.slice(1).replaceAll('/', '.'),
      message: v.message,
    }));
    return {
      status: 422,
      code: 'VALIDATION_ERROR',
      message: 'The request is invalid.',
      details,
      detail: validationDetail(details),
    };
  }
  if (error instanceof ZodError) {
    const details = zodIssues(error);
    return {
      status: 422,
      code: 'VALIDATION_ERROR',
      message: 'The request is invalid.',
      details,
      detail: validationDetail(details),
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
  const { status, code, message, details, detail, outage } = classify(error);
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
    .send(errorBody(request.id, code, message, details, detail));
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
