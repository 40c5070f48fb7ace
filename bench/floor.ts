// The floor: node:http + pg, no framework, doing a chat turn's same writes and streaming the same events.
// Run by bench/run.ts as a child: FLOOR_PORT, DATABASE_URL, FLOOR_EVENTS (a JSON file), DATABASE_POOL_MAX.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';

interface Ev {
  type: string;
  [k: string]: unknown;
}

// The events of one real turn, recorded from our server: start, …, N × chunk, complete.
const recorded = JSON.parse(readFileSync(process.env.FLOOR_EVENTS!, 'utf8')) as Ev[];
const middle = recorded.slice(1, -1);
const completeTemplate = recorded.at(-1) as Ev & {
  agent_id: string;
  agent_name: string;
  usage: { prompt_tokens: number; completion_tokens: number; estimated: boolean };
};
const content = middle.map((e) => (e.type === 'chunk' ? String(e.content) : '')).join('');

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.DATABASE_POOL_MAX ?? 20),
  connectionTimeoutMillis: 5000,
  idleTimeoutMillis: 30_000,
});
pool.on('error', () => {});

// Copied from src/modules/chat/chat.repo.ts insertTurn: the same one statement, so the same database work.
const INSERT_TURN = `
  with dup as (
    select um.id as user_message_id, am.id as assistant_message_id
    from chat_messages um
    join chat_messages am on am.reply_to = um.id and am.session_id = um.session_id
    join chat_sessions ds on ds.id = um.session_id and ds.deleted_at is null
      and (ds.user_id is null or ds.user_id = $2)
    where $3
      and um.session_id = $1 and um.role = 'user' and um.request_hash = $4
      and um.created_at > now() - make_interval(secs => $5)
      and am.status = 'streaming' and um.deleted_at is null
    order by um.seq desc limit 1
  ),
  s as (
    insert into chat_sessions as cs (id, user_id, title, agent_id, context, message_count, last_seq, last_message_at, last_activity_at)
    select $1, $2, $6, $7, coalesce($8::jsonb, '{}'::jsonb), 2, 2, now(), now()
    where not exists (select 1 from dup)
    on conflict (id) do update set
      user_id = coalesce(cs.user_id, excluded.user_id),
      title = coalesce(cs.title, excluded.title),
      agent_id = coalesce($7, cs.agent_id),
      context = case when $8::jsonb is null then cs.context else excluded.context end,
      message_count = cs.message_count + 2,
      last_seq = cs.last_seq + 2,
      last_message_at = now(), last_activity_at = now(), updated_at = now()
    where cs.deleted_at is null and (cs.user_id is null or cs.user_id = excluded.user_id)
    returning cs.last_seq, (xmax = 0) as created
  ),
  u as (
    insert into chat_messages (id, session_id, seq, role, content, status, user_id, idempotency_scope, idempotency_key, request_hash)
    select $9::uuid, $1, s.last_seq - 1, 'user', $10, 'completed', $2, $11, $12, $4
    from s
    returning seq
  ),
  a as (
    insert into chat_messages (id, session_id, seq, role, content, status, user_id, reply_to, instance_id, heartbeat_at)
    select $13::uuid, $1, s.last_seq, 'assistant', '', 'streaming', $2, $9::uuid, $14, now()
    from s
    returning id
  )
  select (select seq from u) as user_seq, (select created from s) as created,
         (select user_message_id from dup) as dup_user, (select assistant_message_id from dup) as dup_assistant,
         (select count(*) from a)::int as inserted`;

// Copied from src/modules/generation/generation.repo.ts finalize: the final UPDATE plus the usage row.
const FINALIZE = `
  with m as (
    update chat_messages set content = $2, status = $3, finish_reason = $4,
      agent_id = $5, agent_name = $6, intent = $7, confidence = $8,
      usage = $9::jsonb, metadata = metadata || $10::jsonb,
      heartbeat_at = null, updated_at = now()
    where id = $1 and status in ('streaming', 'interrupted')
    returning id, session_id, user_id
  ), l as (
    insert into generation_usage (message_id, session_id, user_id, agent_id, model, prompt_tokens, completion_tokens, estimated, status)
    select m.id, m.session_id, m.user_id, $5, $11, $12, $13, $14, $3
    from m
    on conflict (message_id) do update set prompt_tokens = excluded.prompt_tokens,
      completion_tokens = excluded.completion_tokens, estimated = excluded.estimated, status = excluded.status
    returning 1
  )
  select id from m`;

const instanceId = randomUUID();
const frame = (id: string, data: unknown) => `id: ${id}\ndata: ${JSON.stringify(data)}\n\n`;

function fail(res: ServerResponse, status: number, code: string) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code, message: code } }));
}

async function turn(req: IncomingMessage, res: ServerResponse, raw: string) {
  let body: { message?: unknown; session_id?: string; agent_id?: string; context?: unknown };
  try {
    body = JSON.parse(raw);
  } catch {
    return fail(res, 400, 'BAD_JSON');
  }
  if (typeof body.message !== 'string' || !body.message.trim()) return fail(res, 422, 'VALIDATION_ERROR');
  const sessionId = body.session_id ?? randomUUID();
  const userMessageId = randomUUID();
  const messageId = randomUUID();
  const hash = createHash('sha256')
    .update(
      JSON.stringify([body.message, body.session_id ?? null, body.agent_id ?? null, body.context ?? null]),
    )
    .digest('base64url');
  const ctx = body.context == null ? null : JSON.stringify(body.context);
  await pool.query(INSERT_TURN, [
    sessionId,
    null,
    true,
    hash,
    30,
    body.message.slice(0, 80),
    body.agent_id ?? null,
    ctx,
    userMessageId,
    body.message,
    `s:${sessionId}`,
    null,
    messageId,
    instanceId,
  ]);

  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  req.socket.setNoDelay(true);
  let offset = 0;
  let seq = 1;
  const start = {
    type: 'start',
    session_id: sessionId,
    message_id: messageId,
    user_message_id: userMessageId,
    timestamp: new Date().toISOString(),
  };
  res.write(frame(`0-${seq}`, start));
  for (const ev of middle) {
    if (ev.type === 'chunk') offset += String(ev.content).length;
    res.write(frame(`${offset}-${++seq}`, ev));
  }

  const complete = { ...completeTemplate, session_id: sessionId, message_id: messageId };
  await pool.query(FINALIZE, [
    messageId,
    content,
    'completed',
    'stop',
    complete.agent_id,
    complete.agent_name,
    'help',
    0.75,
    JSON.stringify(complete.usage),
    '{}',
    'offline',
    complete.usage.prompt_tokens,
    complete.usage.completion_tokens,
    true,
  ]);
  res.end(frame(`${offset}-${++seq}`, complete));
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  if (req.method !== 'POST' || req.url !== '/api/v1/chat/stream') return fail(res, 404, 'NOT_FOUND');
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => {
    raw += c;
  });
  req.on('end', () => {
    turn(req, res, raw).catch(() => {
      if (!res.headersSent) fail(res, 500, 'INTERNAL');
      else res.end();
    });
  });
});
server.keepAliveTimeout = 72_000;
server.listen(Number(process.env.FLOOR_PORT), '127.0.0.1');

const shutdown = () => {
  server.close();
  server.closeIdleConnections();
  pool.end().finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
