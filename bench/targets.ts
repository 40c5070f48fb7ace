// The servers under test: the built app (with or without Redis) and the floor, each on its own database.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { nativeComplete, streamTurn } from './client.js';
import type { BenchDb } from './pgadmin.js';
import { type Child, freePort, spawnServer } from './procs.js';
import { turnSql } from './sqlshape.js';

export const ROOT = resolve(import.meta.dirname, '..');
export const REDIS_URL = 'redis://127.0.0.1:6379';
/** An HS256 secret for the query benchmark's tokens; only ever used against 127.0.0.1. */
export const BENCH_JWT_SECRET = 'bench-only-secret-0123456789abcdef';
/** The message whose offline answer is multi-line Markdown (54 chunks, 59 events). */
export const TURN_BODY = JSON.stringify({ message: 'ajuda' });

/** A streamed-turn route under load: where to POST, a body per turn, what a whole answer looks like. */
export interface TurnRoute {
  path: string;
  body: string | (() => string);
  isComplete(text: string): boolean;
}

export const NATIVE_ROUTE: TurnRoute = {
  path: '/api/v1/chat/stream',
  body: TURN_BODY,
  isComplete: nativeComplete,
};

// The AI SDK body needs a chat id; a fresh one per turn is what the native body gets from the
// server (a new session), so both routes do the same work per turn.
let uiTurns = 0;
const uiRun = randomBytes(4).toString('hex');
const UI_FINISH = '"type":"finish"';
const UI_DONE = 'data: [DONE]\n\n';

/** The same turn through the AI SDK route (AI-SDK.md): `useChat`'s body, a UI message stream back. */
export const UI_ROUTE: TurnRoute = {
  path: '/api/v1/chat/ui',
  body: () =>
    JSON.stringify({
      id: `bench-${uiRun}-${++uiTurns}`,
      messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'ajuda' }] }],
      trigger: 'submit-message',
    }),
  isComplete: (text) => text.endsWith(UI_DONE) && text.includes(UI_FINISH, text.length - 400),
};

/**
 * The `node` flags production starts the server with: the Dockerfile's CMD, between `node` and the
 * script. The bench starts our server the same way; BENCH_OURS_FLAGS (space-separated, may be
 * empty for Node's defaults) replaces them for an experiment.
 */
export function productionNodeFlags(): string[] {
  if (process.env.BENCH_OURS_FLAGS !== undefined)
    return process.env.BENCH_OURS_FLAGS.split(' ').filter(Boolean);
  const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const argv = cmd ? (JSON.parse(cmd[1]!) as string[]) : [];
  if (argv[0] !== 'node') throw new Error('Dockerfile: CMD is not ["node", …flags, script]');
  return argv.slice(1, -1);
}

// config.ts caps RATE_LIMIT_CHAT_PER_MINUTE at 100000, so the brief's 1000000 would fail at boot.
const CHAT_RATE_LIMIT = '100000';

export interface OursOptions {
  db: BenchDb;
  serverJs: string;
  redisPrefix?: string;
  /** Default REDIS_URL (the shared one); the counting bench passes its private server. */
  redisUrl?: string;
  /** Extra `node` flags, e.g. ['--cpu-prof', '--cpu-prof-dir=…']. */
  nodeFlags?: string[];
  name?: string;
  env?: Record<string, string>;
}

export async function startOurs(opts: OursOptions): Promise<Child> {
  const port = await freePort();
  return spawnServer({
    name: opts.name ?? (opts.redisPrefix ? 'ours+redis' : 'ours'),
    args: [...productionNodeFlags(), ...(opts.nodeFlags ?? []), opts.serverJs],
    cwd: ROOT,
    port,
    env: {
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DATABASE_URL: opts.db.url,
      DATABASE_POOL_MAX: '20',
      // The bench migrated the database itself, so the server's own writes are only the turns'.
      MIGRATE_ON_BOOT: 'false',
      RATE_LIMIT_CHAT_PER_MINUTE: CHAT_RATE_LIMIT,
      RATE_LIMIT_READ_PER_MINUTE: '1000000',
      MAX_CONCURRENT_GENERATIONS: '1000',
      JWT_SECRET: BENCH_JWT_SECRET,
      ...(opts.redisPrefix
        ? { REDIS_URL: opts.redisUrl ?? REDIS_URL, REDIS_KEY_PREFIX: opts.redisPrefix }
        : {}),
      ...opts.env,
    },
  });
}

export interface FloorOptions {
  nodeFlags?: string[];
  /** The floor does a correct turn's Redis work under this prefix. */
  redisPrefix?: string;
  redisUrl?: string;
  env?: Record<string, string>;
}

export async function startFloor(db: BenchDb, specFile: string, opts: FloorOptions = {}): Promise<Child> {
  const port = await freePort();
  const nodeFlags = opts.nodeFlags ?? [];
  return spawnServer({
    name: opts.redisPrefix ? 'floor+redis' : 'floor',
    args: [...nodeFlags, '--import', 'tsx', join(ROOT, 'bench/floor.ts')],
    cwd: ROOT,
    port,
    env: {
      NODE_ENV: 'production',
      FLOOR_PORT: String(port),
      FLOOR_SPEC: specFile,
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: '20',
      BENCH_FLOOR_NAMED: process.env.BENCH_FLOOR_NAMED ?? '0',
      ...(opts.redisPrefix
        ? { FLOOR_REDIS_URL: opts.redisUrl ?? REDIS_URL, FLOOR_REDIS_PREFIX: opts.redisPrefix }
        : {}),
      ...opts.env,
    },
  });
}

/**
 * One real turn against our server; its event payloads (start … complete) are what the floor
 * replays, so both stream exactly the same chunks, and the SQL our repos send for such a turn is
 * what the floor runs. Returns the file the floor reads.
 */
export async function recordTurn(base: string): Promise<{ file: string; events: number; chars: number }> {
  const agent = new Agent({ keepAlive: false });
  const raw = await new Promise<string>((resolveBody, reject) => {
    const req = request(
      new URL('/api/v1/chat/stream', base),
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolveBody(text) : reject(new Error(`probe: HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(TURN_BODY);
  });
  const events = raw
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)) as { type: string; [field: string]: unknown });
  if (events[0]?.type !== 'start' || events.at(-1)?.type !== 'complete') {
    throw new Error(`probe turn did not stream start … complete: ${raw.slice(0, 300)}`);
  }
  const content = events.map((e) => (e.type === 'chunk' ? String(e.content) : '')).join('');
  const intent = events.find((e) => e.type === 'intent');
  const complete = events.at(-1)!;
  const sql = await turnSql({
    content,
    agentId: String(complete.agent_id),
    agentName: String(complete.agent_name),
    intent: intent ? String(intent.intent) : null,
    confidence: intent ? Number(intent.confidence) : null,
    usage: complete.usage as { prompt_tokens: number; completion_tokens: number; estimated: boolean },
  });
  const file = join(tmpdir(), `bench-floor-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify({ events, sql }));
  return { file, events: events.length, chars: content.length };
}

/** A short sanity turn through the load client (same path the phases use). */
export async function checkTurn(base: string, route: TurnRoute = NATIVE_ROUTE): Promise<void> {
  const agent = new Agent({ keepAlive: false });
  const body = typeof route.body === 'string' ? route.body : route.body();
  const r = await streamTurn(agent, new URL(route.path, base), body, 10_000, {}, route.isComplete);
  if (!r.ok) throw new Error(`sanity turn against ${base} failed: ${r.error}`);
}

/** True when something answers PING on 127.0.0.1:6379 within a second. */
export function redisAnswers(): Promise<boolean> {
  return new Promise((resolveProbe) => {
    const socket = connect(6379, '127.0.0.1');
    const finish = (ok: boolean) => {
      socket.destroy();
      resolveProbe(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => finish(d.toString().startsWith('+PONG')));
  });
}

/** Deletes every key under the bench's own prefix (memory lists, stream logs). */
export async function dropRedisPrefix(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let removed = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) removed += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return removed;
}
