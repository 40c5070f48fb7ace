// A held event stream gives its connection's HTTP parser back (src/plugins/sse.ts,
// releaseHttpParser): what a client sees of that, and what the database keeps.
import {
  Agent,
  type ClientRequest,
  createServer,
  request as httpRequest,
  type ServerResponse,
} from 'node:http';
import { connect, type Socket } from 'node:net';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { releaseHttpParser } from '../src/plugins/sse.js';
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
  it('streams and stores the whole reply; the connection then carries the next turn', async () => {
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

    // The server reads the next request on the same connection, with a parser of its own again.
    fake.setScript({ tokens: ['de ', 'novo'] });
    const second = await turn(heldPort, agent, headers, 'de novo?');
    expect(second.reused).toBe(true);
    expect(second.socket).toBe(first.socket);
    expect(textOf(second.raw)).toBe('de novo');
    const { events: again } = parseSse(second.raw);
    expect(await row(again[0]!.data.message_id)).toEqual({ status: 'completed', content: 'de novo' });
    // And a third, after that one was held too.
    fake.setScript({ tokens: ['e ', 'outra'], firstTokenDelayMs: 300 });
    const third = await turn(heldPort, agent, headers, 'mais?');
    expect(third.socket).toBe(first.socket);
    expect(textOf(third.raw)).toBe('e outra');
    agent.destroy();
    await first.closed;
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

  it('answers a request pipelined behind a released stream once the stream ends', async () => {
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
    let answered: () => void;
    const health = new Promise<void>((r) => {
      answered = r;
    });
    socket.on('data', () => {
      if (/HTTP\/1\.1 200 OK[\s\S]*HTTP\/1\.1 200 OK[\s\S]*"status":"ok"}$/.test(raw)) answered();
    });
    socket.write(
      `POST /api/v1/chat/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Authorization: ${(await auth('held-connection-3')).authorization}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await ping;
    socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await health;
    socket.destroy();
    // Two responses, in order: the whole stream (its chunked body ended), then the health check.
    const [stream, second] = raw.split(/(?=HTTP\/1\.1 )/);
    expect(stream).toContain('"type":"complete"');
    expect(stream!.endsWith('0\r\n\r\n')).toBe(true);
    expect(second).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
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

describe('releaseHttpParser on this runtime', () => {
  it('a held stream keeps a short shared header string, not its whole header block', async () => {
    const { app, port } = await start({ SSE_HEARTBEAT_MS: '100' });
    const responses: ServerResponse[] = [];
    app.server.on('request', (_req: unknown, res: ServerResponse) => responses.push(res));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    fake.setScript({ tokens: ['devagar ', 'e ', 'sempre'], firstTokenDelayMs: 300 });
    const held = await turn(port, agent, await auth('held-connection-5'), 'oi');
    agent.destroy();
    expect(textOf(held.raw)).toBe('devagar e sempre');
    expect(held.raw).toMatch(/\n: ping\n\n/);
    const [res] = responses;
    expect(res!.headersSent).toBe(true);
    expect((res as unknown as { _header: string })._header.length).toBeLessThan(40);
  });

  it('frees the parser of a response in flight, and the connection reads the next request afterwards', async () => {
    const released: boolean[] = [];
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('held ');
        released.push(releaseHttpParser(res));
        // A second call finds nothing left to free.
        released.push(releaseHttpParser(res));
        setTimeout(() => res.end(req.url), 20);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) =>
      new Promise<{ body: string; socket: Socket }>((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve({ body, socket: res.socket }));
        })
          .on('error', reject)
          .end();
      });
    const a = await get('/one');
    const b = await get('/two');
    agent.destroy();
    await new Promise((r) => server.close(r));
    // If a Node release changes its parser's shape this says so (the optimisation would be off).
    expect(released).toEqual([true, false, true, false]);
    expect([a.body, b.body]).toEqual(['held /one', 'held /two']);
    expect(b.socket).toBe(a.socket);
  });
});
