// A held event stream gives its connection's HTTP parser back (src/plugins/sse.ts,
// releaseHttpParser): what a client sees of that, and what the database keeps.
import { Agent, type ClientRequest, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { signHS256 } from './support/jwt.js';
import { parseSse } from './support/sse.js';

const SECRET = 'test-app-secret-0123456789abcdef';
let tdb: TestDb;
const redis = createTestRedis();
let fake: FakeModel;
const opened: FastifyInstance[] = [];

async function start(env: Record<string, string>) {
  const app = await createTestApp({
    db: tdb.handle,
    redis,
    model: fakeProvider(fake),
    env: { JWT_SECRET: SECRET, ...env },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  opened.push(app);
  return { app, port: (app.server.address() as { port: number }).port };
}

const auth = async (sub: string) => ({ authorization: `Bearer ${await signHS256(SECRET, { sub })}` });

async function row(id: string) {
  const [r] = rowsOf<{ status: string; content: string }>(
    await tdb.handle.db.execute(sql`select status, content from chat_messages where id = ${id}`),
  );
  return r;
}

interface Turn {
  raw: string;
  socket: Socket;
  reused: boolean;
  /** Resolves when the client's socket closes. */
  closed: Promise<void>;
}

/** One streamed turn through `agent`: its whole body, and the socket that carried it. */
function turn(port: number, agent: Agent, headers: Record<string, string>, message: string): Promise<Turn> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/api/v1/chat/stream',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
      },
      (res) => {
        const socket = res.socket;
        const closed = new Promise<void>((done) => socket.once('close', () => done()));
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          raw += c;
        });
        res.on('end', () => resolve({ raw, socket, reused: req.reusedSocket, closed }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ message }));
  });
}

const textOf = (raw: string) =>
  parseSse(raw)
    .events.filter((e) => e.data.type === 'chunk')
    .map((e) => e.data.content as string)
    .join('');

let heldPort: number;
beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
  // Heartbeats every 100 ms: a stream is checked first after 50 ms, and gives its parser back then.
  heldPort = (await start({ SSE_HEARTBEAT_MS: '100' })).port;
});
afterAll(async () => {
  for (const app of opened) await app.close();
  await fake.close();
  await redis?.close();
  await tdb.drop();
});

describe('a held stream frees its connection’s HTTP parser', () => {
  it('streams and stores the whole reply, then closes the connection; the next turn opens a new one', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const headers = await auth('held-connection-1');
    fake.setScript({ tokens: ['depois ', 'da ', 'pausa'], firstTokenDelayMs: 400 });
    const first = await turn(heldPort, agent, headers, 'oi');
    const { events } = parseSse(first.raw);
    expect(first.raw).toMatch(/\n: ping\n\n/); // idle past the first check: the parser went then
    expect(events.at(-1)!.data.type).toBe('complete');
    expect(textOf(first.raw)).toBe('depois da pausa');
    expect(await row(events[0]!.data.message_id)).toEqual({
      status: 'completed',
      content: 'depois da pausa',
    });
    // The server ends the connection after the stream (it can read no further request on it).
    await first.closed;

    fake.setScript({ tokens: ['de ', 'novo'] });
    const second = await turn(heldPort, agent, headers, 'de novo?');
    expect(second.reused).toBe(false);
    expect(textOf(second.raw)).toBe('de novo');
    agent.destroy();
  });

  it('a stream that ends before its first check keeps its connection for the next request', async () => {
    // 10 s heartbeats: the first check comes after 5 s, long after this quick reply.
    const { port } = await start({ SSE_HEARTBEAT_MS: '10000' });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const headers = await auth('held-connection-2');
    fake.setScript({ tokens: ['rápido'] });
    const first = await turn(port, agent, headers, 'oi');
    expect(textOf(first.raw)).toBe('rápido');
    const second = await turn(port, agent, headers, 'oi de novo');
    expect(second.reused).toBe(true);
    expect(second.socket).toBe(first.socket);
    expect(textOf(second.raw)).toBe('rápido');
    agent.destroy();
  });

  it('drops a request pipelined behind a released stream; the stream completes and the server goes on', async () => {
    fake.setScript({ tokens: ['um ', 'dois'], firstTokenDelayMs: 400 });
    const body = JSON.stringify({ message: 'oi' });
    const socket = connect(heldPort, '127.0.0.1');
    let raw = '';
    let pinged: () => void;
    const ping = new Promise<void>((r) => {
      pinged = r;
    });
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      raw += c;
      if (raw.includes(': ping')) pinged();
    });
    const ended = new Promise<void>((r) => socket.once('end', () => r()));
    socket.write(
      `POST /api/v1/chat/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Authorization: ${(await auth('held-connection-3')).authorization}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await ping;
    socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await ended;
    socket.destroy();
    // One response on the connection: the stream, whole, and nothing answered after it.
    expect(raw.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(raw).toContain('"type":"complete"');
    expect(raw.endsWith('0\r\n\r\n')).toBe(true);
    expect((await fetch(`http://127.0.0.1:${heldPort}/health`)).status).toBe(200);
  });

  it('still sees the client leave: under GENERATION_ON_DISCONNECT=cancel the reply stops and keeps its partial', async () => {
    const { port } = await start({ SSE_HEARTBEAT_MS: '100', GENERATION_ON_DISCONNECT: 'cancel' });
    fake.setScript({ tokens: Array(200).fill('palavra '), delayMs: 20, firstTokenDelayMs: 300 });
    const headers = await auth('held-connection-4');
    const requestIndex = fake.requests.length;
    const messageId = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/api/v1/chat/stream',
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
        },
        (res) => {
          let raw = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            raw += c;
            // Leave after the first words, well after the parser was given back (ping seen).
            if (raw.includes(': ping') && raw.includes('"type":"chunk"')) {
              req.destroy();
              resolve(
                JSON.parse(raw.slice(raw.indexOf('data: ') + 6, raw.indexOf('\n', raw.indexOf('data: '))))
                  .message_id,
              );
            }
          });
        },
      );
      req.on('error', () => undefined);
      req.on('close', () => reject(new Error('closed before a chunk')));
      req.end(JSON.stringify({ message: 'fale muito' }));
    });
    await fake.waitForAbort(requestIndex, 3000);
    await vi.waitFor(async () => expect((await row(messageId))?.status).toBe('interrupted'), {
      timeout: 5000,
      interval: 30,
    });
    const stored = await row(messageId);
    expect(stored!.content.startsWith('palavra ')).toBe(true);
    expect(stored!.content.length).toBeLessThan(200 * 'palavra '.length);
  });
});
