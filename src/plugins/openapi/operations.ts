// Documentation the routes do not carry themselves: operation ids, bilingual summaries, tags, SSE bodies.
import { z } from 'zod';
import { chatEventSchema, investigationEventSchema } from './events.js';

export interface OperationDoc {
  operationId: string;
  /** "Português / English". */
  summary: string;
  tags: string[];
  description?: string;
  /** The route answers Server-Sent Events whose `data:` lines follow this schema. */
  sse?: z.ZodType;
  /** Success status when the route declares no response schema (default 200). */
  status?: number;
  /** Request headers worth documenting (only used when the route declares none). */
  headers?: z.ZodObject;
  /** 'none': no bearer token involved (health, root); default: a token is optional. */
  auth?: 'none' | 'optional';
  /** The route can answer 409 (state conflicts, Idempotency-Key reuse). */
  conflict?: boolean;
}

const idempotency = z.object({
  'idempotency-key': z
    .string()
    .max(255)
    .optional()
    .describe('Repeat a POST safely: the same key attaches to the same turn'),
});
const lastEventId = z.object({
  'last-event-id': z.string().optional().describe('Resume after this cursor (same as ?after=)'),
});

/**
 * Keyed by `METHOD url` as Fastify registers it (`:param`). What a route declares in its own
 * schema (operationId, summary, tags, response) wins; routes missing here get a derived id.
 */
export const operations: Record<string, OperationDoc> = {
  'GET /': { operationId: 'getRoot', summary: 'Raiz da API / API root', tags: ['operations'], auth: 'none' },
  'GET /health': {
    operationId: 'getHealth',
    summary: 'Vivacidade / Liveness (no I/O)',
    tags: ['operations'],
    auth: 'none',
  },
  'GET /health/ready': {
    operationId: 'getReadiness',
    summary: 'Prontidão / Readiness: Postgres and Redis',
    tags: ['operations'],
    auth: 'none',
  },
  'POST /api/v1/chat/stream': {
    conflict: true,
    operationId: 'streamChat',
    summary: 'Enviar mensagem (resposta em SSE) / Send a message, reply streamed as SSE',
    tags: ['chat'],
    description:
      'The turn is stored before the first byte; the reply streams as Server-Sent Events and is stored as it grows. A client disconnect is not a stop.',
    sse: chatEventSchema,
    headers: idempotency,
  },
  'POST /api/v1/chat/message': {
    conflict: true,
    operationId: 'sendChatMessage',
    summary: 'Enviar mensagem (JSON) / Send a message, answer as JSON',
    tags: ['chat'],
    headers: idempotency,
  },
  'GET /api/v1/chat/stream/:message_id': {
    operationId: 'resumeChatStream',
    summary: 'Retomar resposta / Resume a reply after a cursor',
    tags: ['chat'],
    description: 'Replays the events after the cursor, then follows the live reply, on any instance.',
    sse: chatEventSchema,
    headers: lastEventId,
  },
  'POST /api/v1/chat/messages/:message_id/stop': {
    conflict: true,
    operationId: 'stopChatMessage',
    summary: 'Parar resposta / Stop a running reply',
    tags: ['chat'],
  },
  'GET /api/v1/chat/sessions': {
    operationId: 'listChatSessions',
    summary: 'Listar conversas / List sessions',
    tags: ['sessions'],
  },
  'GET /api/v1/chat/sessions/:id': {
    operationId: 'getChatSession',
    summary: 'Ler conversa / Get a session',
    tags: ['sessions'],
  },
  'PATCH /api/v1/chat/sessions/:id': {
    operationId: 'renameChatSession',
    summary: 'Renomear conversa / Rename a session',
    tags: ['sessions'],
  },
  'DELETE /api/v1/chat/sessions/:id': {
    operationId: 'deleteChatSession',
    summary: 'Apagar conversa / Delete a session (restorable)',
    tags: ['sessions'],
    status: 204,
  },
  'POST /api/v1/chat/sessions/:id/restore': {
    operationId: 'restoreChatSession',
    summary: 'Restaurar conversa / Restore a deleted session',
    tags: ['sessions'],
  },
  'GET /api/v1/chat/history/:id': {
    operationId: 'getChatHistory',
    summary: 'Histórico / Latest messages of a session',
    tags: ['sessions'],
  },
  'DELETE /api/v1/chat/history/:id': {
    operationId: 'clearChatHistory',
    summary: 'Limpar histórico / Clear a session’s messages',
    tags: ['sessions'],
    status: 204,
  },
  'GET /api/v1/chat/agents': {
    operationId: 'listAgents',
    summary: 'Agentes / The agent roster',
    tags: ['chat'],
  },
  'POST /api/v1/investigations': {
    operationId: 'createInvestigation',
    summary: 'Iniciar investigação / Start an investigation (JSON or text/csv upload)',
    tags: ['investigations'],
    status: 202,
  },
  'GET /api/v1/investigations': {
    operationId: 'listInvestigations',
    summary: 'Minhas investigações / The caller’s investigations',
    tags: ['investigations'],
  },
  'GET /api/v1/investigations/:id': {
    operationId: 'getInvestigation',
    summary: 'Status da investigação / Investigation status and progress',
    tags: ['investigations'],
  },
  'GET /api/v1/investigations/:id/results': {
    conflict: true,
    operationId: 'getInvestigationResults',
    summary: 'Resultados / Findings (409 while running)',
    tags: ['investigations'],
  },
  'GET /api/v1/investigations/:id/stream': {
    operationId: 'streamInvestigation',
    summary: 'Acompanhar investigação (SSE) / Progress, findings and completion as SSE',
    tags: ['investigations'],
    sse: investigationEventSchema,
    headers: lastEventId,
  },
  'DELETE /api/v1/investigations/:id': {
    operationId: 'cancelInvestigation',
    summary: 'Cancelar investigação / Cancel an investigation',
    tags: ['investigations'],
  },
};

const VERBS: Record<string, string> = {
  GET: 'get',
  POST: 'create',
  PUT: 'replace',
  PATCH: 'update',
  DELETE: 'delete',
};

/** The lookup key of a route: method and URL without a trailing slash (the router ignores it). */
export const operationKey = (method: string, url: string) => `${method} ${url.replace(/(.)\/+$/, '$1')}`;

/** `verbNoun` from the method and path, for routes nobody documented: GET /api/v1/a/b/:id → getABById. */
export function deriveOperationId(method: string, url: string): string {
  const segments = url.split('/').filter(Boolean);
  const words = segments
    .filter((s) => !s.startsWith(':') && s !== 'api' && !/^v\d+$/.test(s))
    .flatMap((s) => s.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  const noun = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('') || 'Root';
  const byId = segments.at(-1)?.startsWith(':') ? 'ById' : '';
  return `${VERBS[method] ?? method.toLowerCase()}${noun}${byId}`;
}
