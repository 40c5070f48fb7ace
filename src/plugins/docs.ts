// GET /docs: the API at a glance, as HTML for people and JSON for tools.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';

const routes: Array<[string, string, string]> = [
  ['POST', '/api/v1/chat/stream', 'Send a message; the reply streams as Server-Sent Events and is stored.'],
  [
    'GET',
    '/api/v1/chat/stream/{message_id}',
    'Resume a reply after a cursor (Last-Event-ID or ?after=), on any instance.',
  ],
  [
    'POST',
    '/api/v1/chat/messages/{message_id}/stop',
    'Stop a running reply; answers with the stored message.',
  ],
  ['POST', '/api/v1/chat/message', 'The same turn without streaming; answers JSON.'],
  [
    'POST',
    '/api/v1/chat/ui',
    'The same turn for Vercel AI SDK clients (useChat): the SDK body in, a UI message stream out.',
  ],
  [
    'GET',
    '/api/v1/chat/ui/{chatId}/stream',
    'AI SDK resume: the running reply of a chat replayed from its start, then live; 204 when none.',
  ],
  [
    'GET',
    '/api/v1/chat/sessions',
    "The caller's sessions, most recent activity first (limit, offset, cursor).",
  ],
  ['GET', '/api/v1/chat/sessions/{id}', 'One session.'],
  ['PATCH', '/api/v1/chat/sessions/{id}', 'Rename a session ({title}).'],
  ['DELETE', '/api/v1/chat/sessions/{id}', 'Soft-delete a session.'],
  ['POST', '/api/v1/chat/sessions/{id}/restore', 'Restore a deleted session within SESSION_RESTORE_DAYS.'],
  ['GET', '/api/v1/chat/history/{id}', 'The latest messages of a session, oldest first (limit, before).'],
  ['DELETE', '/api/v1/chat/history/{id}', "Clear a session's messages."],
  ['GET', '/api/v1/chat/agents', 'The agent roster.'],
  [
    'POST',
    '/api/v1/chat/direct/maritaca',
    'Maritaca mode: a chat turn ({messages, session_id, …}) answered in JSON.',
  ],
  ['POST', '/api/v1/investigations/', 'Start an investigation over contracts (202).'],
  ['GET', '/api/v1/investigations/', "The caller's investigations (always a JSON array)."],
  ['GET', '/api/v1/investigations/{id}', 'Status and progress.'],
  ['GET', '/api/v1/investigations/{id}/results', 'Findings (409 while running).'],
  ['GET', '/api/v1/investigations/{id}/stream', 'Progress, anomalies and completion as Server-Sent Events.'],
  ['DELETE', '/api/v1/investigations/{id}', 'Cancel; the work stops.'],
  ['POST', '/api/v1/investigations/public/create', "The frontend's create (its vocabulary accepted)."],
  [
    'GET',
    '/api/v1/investigations/public/status/{id}',
    'InvestigationStatus; the id is a read capability for public data.',
  ],
  [
    'GET',
    '/api/v1/investigations/public/results/{id}',
    'InvestigationResults (severity high/medium/low, affected records).',
  ],
  ['GET', '/health', 'Liveness (no I/O).'],
  ['GET', '/health/ready', 'Readiness: Postgres and Redis; 503 naming what is down.'],
];

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// The JSON form is checked against this; the HTML form is a string and bypasses serialization.
const docsSchema = z.object({
  name: z.string(),
  version: z.string(),
  routes: z.array(z.object({ method: z.string(), path: z.string(), summary: z.string() })),
});

export const docsRoutes: FastifyPluginAsyncZod<{ version: string }> = async (app, opts) => {
  app.get(
    '/docs',
    { schema: { response: { 200: z.union([docsSchema, z.string().describe('text/html')]) } } },
    async (request, reply) => {
      if (!String(request.headers.accept ?? '').includes('text/html')) {
        return {
          name: 'cidadao-api',
          version: opts.version,
          routes: routes.map(([method, path, summary]) => ({ method, path, summary })),
        };
      }
      const rows = routes
        .map(
          ([m, p, s]) =>
            `<tr><td><code>${m}</code></td><td><code>${escapeHtml(p)}</code></td><td>${escapeHtml(s)}</td></tr>`,
        )
        .join('');
      return reply
        .type('text/html; charset=utf-8')
        .send(
          `<!doctype html><meta charset="utf-8"><title>cidadao-api ${escapeHtml(opts.version)}</title>` +
            '<style>body{font:15px system-ui;margin:2rem}td{padding:.3rem .8rem;border-bottom:1px solid #ddd}</style>' +
            `<h1>cidadao-api ${escapeHtml(opts.version)}</h1><p>Errors are JSON: <code>{"error":{"code","message","details"},"request_id"}</code>. ` +
            'Send <code>Authorization: Bearer &lt;Supabase access token&gt;</code> when logged in.</p>' +
            `<table>${rows}</table>`,
        );
    },
  );
};
