// The floor: node:http + pg, no framework, doing a chat turn's same writes and streaming the same events.
// Run by bench/run.ts as a child: FLOOR_PORT, FLOOR_SPEC (a JSON file), DATABASE_URL, DATABASE_POOL_MAX,
// FLOOR_REDIS_URL + FLOOR_REDIS_PREFIX (optional: then it does the Redis work a correct turn needs).
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ADMIT_SCRIPT } from '../src/modules/chat/admission.js';
import type { BoundStatement, TurnSql } from './sqlshape.js';

// BENCH_FLOOR_NAMED=1: the floor uses named prepared statements too, as our server does.
const NAMED = process.env.BENCH_FLOOR_NAMED === '1';
function statement(name: string, text: string, values: unknown[]) {
  return NAMED ? { name, text, values } : { text, values };
}

interface Ev {
  type: string;
  [k: string]: unknown;
}

/**
 * `events`: one real turn recorded from our server (start, …, N × chunk, complete), replayed with
 * fresh ids. `sql`: the two statements our repos send for that turn (captured from insertTurn and
 * finalize by bench/sqlshape.ts), so the database does exactly the same work for both servers.
 */
const spec = JSON.parse(readFileSync(process.env.FLOOR_SPEC!, 'utf8')) as { events: Ev[]; sql: TurnSql };
const middle = spec.events.slice(1, -1);
const completeTemplate = spec.events.at(-1)!;

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.DATABASE_POOL_MAX ?? 20),
  connectionTimeoutMillis: 5000,
  idleTimeoutMillis: 30_000,
});
pool.on('error', () => {});

const instanceId = randomUUID();

/**
 * With Redis, per turn, what a correct turn needs and no more: one admission script (rate-limit
 * step + concurrency slot, awaited before the insert), one pipeline with the events streamed
 * before the final write (chunks merged, as ours), and one pipeline with `complete` and the slot's
 * release after it. Neither pipeline is awaited by the client.
 */
type FloorRedis = Redis & {
  admitTurn(...args: Array<string | number>): Promise<[number, number, number]>;
};
const redis = process.env.FLOOR_REDIS_URL
  ? (new Redis(process.env.FLOOR_REDIS_URL, { maxRetriesPerRequest: 1 }) as FloorRedis)
  : null;
const prefix = process.env.FLOOR_REDIS_PREFIX ?? 'floor:';
redis?.defineCommand('admitTurn', { numberOfKeys: 2, lua: ADMIT_SCRIPT });
redis?.on('error', () => {});
const frame = (id: string, data: unknown) => `id: ${id}\ndata: ${JSON.stringify(data)}\n\n`;
const values = (st: BoundStatement, slots: Record<string, unknown>) =>
  st.params.map((p) => {
    if ('slot' in p) return slots[p.slot];
    if ('template' in p)
      return p.markers.reduce((t, [marker, slot]) => t.replaceAll(marker, String(slots[slot])), p.template);
    return p.value;
  });

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
  const slots = {
    sessionId,
    title: body.message.slice(0, 80),
    content: body.message,
    userMessageId: randomUUID(),
    assistantMessageId: randomUUID(),
    scope: `s:${sessionId}`,
    hash: createHash('sha256')
      .update(
        JSON.stringify([body.message, body.session_id ?? null, body.agent_id ?? null, body.context ?? null]),
      )
      .digest('base64url'),
    instanceId,
  };
  const runKey = `${prefix}running:anon:${sessionId}`;
  const slot = randomUUID();
  if (redis) {
    const [, , state] = await redis.admitTurn(
      `${prefix}rl:chat:ip:${req.socket.remoteAddress}`,
      runKey,
      60_000,
      100_000,
      slot,
      900_000,
      1000,
    );
    if (state !== 0) return fail(res, 429, 'RATE_LIMITED');
  }
  await pool.query(
    statement('floor_insert_turn', spec.sql.insertTurn.text, values(spec.sql.insertTurn, slots)),
  );

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
    message_id: slots.assistantMessageId,
    user_message_id: slots.userMessageId,
    timestamp: new Date().toISOString(),
  };
  // One write per event, as ours; Node coalesces the writes of one tick into one syscall.
  res.write(frame(`0-${seq}`, start));
  const logKey = `${prefix}gen:${slots.assistantMessageId}`;
  const log = redis?.pipeline();
  log?.xadd(logKey, 'MAXLEN', '~', 10_000, `0-${seq}`, 'e', JSON.stringify(start));
  let merged = '';
  for (const ev of middle) {
    if (ev.type === 'chunk') offset += String(ev.content).length;
    res.write(frame(`${offset}-${++seq}`, ev));
    if (!log) continue;
    if (ev.type === 'chunk') {
      merged += String(ev.content);
      continue;
    }
    log.xadd(logKey, 'MAXLEN', '~', 10_000, `${offset}-${seq}`, 'e', JSON.stringify(ev));
  }
  if (log) {
    const chunk = { ...middle.find((e) => e.type === 'chunk'), content: merged };
    log.xadd(logKey, 'MAXLEN', '~', 10_000, `${offset}-${seq}`, 'e', JSON.stringify(chunk));
    log.expire(logKey, 3600);
    log.exec().catch(() => {});
  }

  await pool.query(statement('floor_finalize', spec.sql.finalize.text, values(spec.sql.finalize, slots)));
  const complete = { ...completeTemplate, session_id: sessionId, message_id: slots.assistantMessageId };
  res.end(frame(`${offset}-${++seq}`, complete));
  redis
    ?.pipeline()
    .xadd(logKey, 'MAXLEN', '~', 10_000, `${offset}-${seq}`, 'e', JSON.stringify(complete))
    .zrem(runKey, slot)
    .exec()
    .catch(() => {});
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
// Fastify's default, so idle keep-alive sockets live as long with both servers.
server.keepAliveTimeout = 72_000;
server.listen(Number(process.env.FLOOR_PORT), '127.0.0.1');

const shutdown = () => {
  server.close();
  server.closeIdleConnections();
  redis?.disconnect();
  pool.end().finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
