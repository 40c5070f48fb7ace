// Helpers for multi-instance tests: waiting on state, server child processes, a private Redis to restart.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { type DbHandle, rowsOf } from '../../src/db/client.js';
import { createRedis, type RedisHandle } from '../../src/plugins/redis.js';
import { listenTestApp } from './app.js';
import { backends, createTestDb, createTestRedis, silentLogger, type TestDb } from './backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './fake-model.js';
import { freePort } from './server-process.js';
import { type SseEvent, streamRequest } from './sse.js';

/** Polls `fn` until it returns something truthy; throws after `ms`. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const chunkText = (events: SseEvent[]) =>
  events
    .filter((e) => e.data.type === 'chunk')
    .map((e) => e.data.content as string)
    .join('');

export const terminals = (events: SseEvent[]) =>
  events.filter((e) => e.data.type === 'complete' || e.data.type === 'error');

/** A chat turn started on `base` and followed: `done` is its whole stream. */
export function followTurn(base: string, message: string) {
  let messageId = '';
  let chunks = 0;
  const done = streamRequest(base, '/api/v1/chat/stream', {
    body: { message },
    onEvent: (e) => {
      if (e.data.type === 'start') messageId = e.data.message_id;
      if (e.data.type === 'chunk') chunks++;
    },
  });
  return {
    done,
    /** Waits for `n` chunks (and `also`, when given); the turn's message id. */
    async afterChunks(
      n: number,
      also?: (messageId: string) => Promise<boolean>,
      ms?: number,
    ): Promise<string> {
      await waitFor(async () => chunks >= n && (!also || (await also(messageId))), ms);
      return messageId;
    },
  };
}

/** A reply of `n` words, each ending in a space. */
export const words = (n: number) => Array.from({ length: n }, (_, i) => `palavra${i} `);

/** Liveness and checkpoint intervals short enough for a test to watch a producer die and be swept. */
export const FAST_LIVENESS = {
  PRODUCER_HEARTBEAT_MS: '200',
  SWEEPER_INTERVAL_MS: '200',
  CHECKPOINT_MS: '100',
};

/** A message row's status and content, as stored. */
export async function storedReply(db: DbHandle, id: string) {
  return rowsOf<{ status: string; content: string }>(
    await db.db.execute(sql`select status, content from chat_messages where id = ${id}`),
  )[0]!;
}

/** `node --import tsx src/server.ts` with only `env` (plus PATH): a second instance that can be killed. */
export async function spawnServer(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; base: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  // Booting through tsx on a loaded 2-core machine can take tens of seconds.
  await waitFor(async () => (await fetch(`${base}/health`).catch(() => null))?.ok, 90_000);
  return { child, base };
}

async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface PrivateRedis {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** A redis-server of the test's own (no persistence: a restart loses every key, as a fresh one does). */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'private-redis-'));
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      {
        stdio: 'ignore',
      },
    );
    await waitFor(() => answers(port), 10_000);
  };
  const stop = async () => {
    const c = child;
    if (!c) return;
    child = null;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The shared setup of the multi-instance durability tests: a test database, the test Redis plus a
 * second connection set on the same prefix (what another instance has), a fake model, and
 * instances on them. Registers the file's beforeAll/afterAll; everything is closed after the file.
 */
export function clusterFixture() {
  const redis = createTestRedis();
  const sharedRedis = redis ? createRedis(backends().redisUrl!, redis.prefix, silentLogger()) : null;
  const apps: FastifyInstance[] = [];
  let tdb: TestDb | undefined;
  let fake: FakeModel | undefined;
  beforeAll(async () => {
    tdb = await createTestDb();
    fake = await startFakeModel();
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await fake?.close();
    await redis?.close();
    await sharedRedis?.close();
    await tdb?.drop();
  });
  return {
    redis,
    sharedRedis,
    get tdb(): TestDb {
      return tdb!;
    },
    get fake(): FakeModel {
      return fake!;
    },
    /** An instance on the test database (closed after the file), or on `db` (the caller closes it). */
    instance: async (env: Record<string, string> = {}, r: RedisHandle | null = redis, db?: DbHandle) => {
      const handle = db ?? tdb!.handle;
      const started = await listenTestApp({ db: handle, redis: r, model: fakeProvider(fake!), env });
      if (handle === tdb!.handle) apps.push(started.app);
      return started;
    },
  };
}
