// Running out of file descriptors: new turns are refused (503 + Retry-After) before the process
// hits EMFILE, and every reply already admitted finishes and is stored whole.
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from './support/backends.js';
import { chunkText, terminals, waitFor } from './support/cluster.js';
import { ensureBuilt, type ServerProcess, startServer } from './support/server-process.js';
import { type StreamResult, streamRequest } from './support/sse.js';

const TOKENS = ['Era ', 'uma ', 'vez ', 'um ', 'contrato ', 'público ', 'muito ', 'longo.'];
const SOFT = 150;
const HARD = 220;

/** An OpenAI-compatible model that sends the first token, then holds every reply until released. */
async function startGatedModel() {
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  let requests = 0;
  const frame = (res: ServerResponse, delta: object, finish: string | null) =>
    res.write(
      `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`,
    );
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      requests++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      frame(res, { role: 'assistant', content: TOKENS[0] }, null);
      await released;
      for (const t of TOKENS.slice(1)) frame(res, { content: t }, null);
      frame(res, {}, 'stop');
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    requests: () => requests,
    release,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('a server near its descriptor limit', () => {
  let db: TestDb;
  let model: Awaited<ReturnType<typeof startGatedModel>>;
  let server: ServerProcess;

  beforeAll(async () => {
    ensureBuilt();
    db = await createTestDb();
    model = await startGatedModel();
    server = await startServer(
      {
        NODE_ENV: 'production',
        DATABASE_URL: db.url!,
        DATABASE_POOL_MAX: '5',
        MIGRATE_ON_BOOT: 'false',
        REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
        REDIS_KEY_PREFIX: `fd-${process.pid}-${Date.now()}:`,
        LLM_BASE_URL: model.url,
        LLM_API_KEY: 'k',
        LLM_IDLE_TIMEOUT_MS: '120000',
        MAX_CONCURRENT_GENERATIONS: '1000',
        RATE_LIMIT_CHAT_PER_MINUTE: '100000',
        DESCRIPTOR_HEADROOM: '40',
        JWT_SECRET: 'descriptors-test-secret-0123456789',
      },
      { wrap: ['prlimit', `--nofile=${SOFT}:${HARD}`] },
    );
    await server.ready(240_000);
  }, 300_000);

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await model?.close();
    await db?.drop();
  });

  it('raises its soft limit, refuses new turns with 503 before EMFILE, and finishes every admitted reply', async () => {
    const limits = readFileSync(`/proc/${server.pid}/limits`, 'utf8');
    expect(limits).toMatch(new RegExp(`Max open files\\s+${HARD}\\s+${HARD}`));

    const held: Array<Promise<StreamResult>> = [];
    let refused: { status: number; retryAfter: unknown; body: any } | null = null;
    // Far more turns than 220 descriptors hold at two per reply: the guard must answer before that.
    for (let i = 0; i < HARD && !refused; i++) {
      let started!: () => void;
      const start = new Promise<void>((r) => {
        started = r;
      });
      const reply = streamRequest(server.base, '/api/v1/chat/stream', {
        body: { message: `conte uma história longa ${i}` },
        onEvent: (e) => {
          if (e.data.type === 'chunk') started();
        },
      });
      const first = await Promise.race([start.then(() => null), reply]);
      if (first) {
        refused = { status: first.status, retryAfter: first.headers['retry-after'], body: first.json };
        break;
      }
      held.push(reply);
    }

    expect(refused, 'no turn was refused').not.toBeNull();
    expect(refused!.status).toBe(503);
    expect(Number(refused!.retryAfter)).toBeGreaterThan(0);
    expect(refused!.body.error.code).toBe('AT_CAPACITY');
    // Well inside the limit: replies were admitted, and stopped well before two per descriptor left.
    expect(held.length).toBeGreaterThan(10);
    expect(held.length).toBeLessThan((HARD - 40) / 2);
    expect(model.requests()).toBe(held.length);

    model.release();
    const results = await Promise.all(held);
    const full = TOKENS.join('');
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(chunkText(r.events)).toBe(full);
      expect(terminals(r.events).map((e) => e.data.type)).toEqual(['complete']);
    }
    const rows = await db.handle.db.execute<{ status: string; content: string }>(
      sql`select status, content from chat_messages where role = 'assistant'`,
    );
    const list = (rows as unknown as { rows?: typeof rows }).rows ?? rows;
    expect(list).toHaveLength(held.length);
    for (const row of list as Array<{ status: string; content: string }>) {
      expect(row).toEqual({ status: 'completed', content: full });
    }
    expect(server.output()).not.toMatch(/EMFILE/);

    // With the replies gone, descriptors are free again: a new turn is admitted (after a sample).
    const again = await waitFor(async () => {
      const r = await streamRequest(server.base, '/api/v1/chat/stream', { body: { message: 'de novo' } });
      return r.status === 200 ? r : undefined;
    }, 30_000);
    expect(chunkText(again.events)).toBe(full);
  }, 240_000);
});
