// A client that stops reading an event stream: the reply goes on into its log and its row, the
// server holds back what the socket cannot take (src/plugins/sse.ts writes a held stream's chunks
// straight to the socket, so the socket's backpressure is the one that counts), and once the client
// reads again it gets every byte, in order, ending with `complete`.
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { waitFor } from './support/cluster.js';
import { type FakeModel, fakeProvider, startFakeModel } from './support/fake-model.js';
import { signHS256 } from './support/jwt.js';
import { parseSse } from './support/sse.js';

const SECRET = 'test-app-secret-0123456789abcdef';
let tdb: TestDb;
const redis = createTestRedis();
let fake: FakeModel;
let app: FastifyInstance;
let port: number;
const serverSockets: Socket[] = [];
const cleanup: Array<() => void> = [];

beforeAll(async () => {
  tdb = await createTestDb();
  fake = await startFakeModel();
  // Heartbeats every 100 ms: the stream is a held one (its parser released) within 50 ms.
  app = await createTestApp({
    db: tdb.handle,
    redis,
    model: fakeProvider(fake),
    env: { JWT_SECRET: SECRET, SSE_HEARTBEAT_MS: '100' },
  });
  app.server.on('connection', (s: Socket) => serverSockets.push(s));
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => {
  for (const fn of cleanup) fn();
  await app.close();
  await fake.close();
  await redis?.close();
  await tdb.drop();
});

/** Decodes an HTTP/1.1 chunked body; null until its last chunk (`0`) has arrived. */
function dechunk(body: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', i);
    if (eol < 0) return null;
    const size = Number.parseInt(body.subarray(i, eol).toString('latin1'), 16);
    if (Number.isNaN(size)) throw new Error(`bad chunk size at ${i}`);
    if (size === 0) return Buffer.concat(parts);
    if (body.length < eol + 2 + size + 2) return null;
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    if (body.subarray(eol + 2 + size, eol + 4 + size).toString('latin1') !== '\r\n')
      throw new Error(`chunk of ${size} bytes not followed by CRLF`);
    i = eol + 4 + size;
  }
}

describe('an event stream to a client that stops reading', () => {
  it('holds the reply back at the socket, and delivers all of it, in order, once the client reads', async () => {
    // ~10 MB in 640 tokens of 16 KB, a token a millisecond: more than the kernel's socket buffers
    // take (4 MB to send, the receiver's initial window), in many small batches.
    const token = `${'palavra '.repeat(2047)}fim `;
    const tokens = Array.from({ length: 640 }, (_, i) => `${i} ${token}`);
    const expected = tokens.join('');
    fake.setScript({ tokens, delayMs: 1 });
    const body = JSON.stringify({ message: 'uma resposta longa, por favor' });
    const authorization = `Bearer ${await signHS256(SECRET, { sub: 'backpressure-1' })}`;

    const client = connect(port, '127.0.0.1');
    cleanup.push(() => client.destroy());
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const received: Buffer[] = [];
    // Reads the status line and a little more, then stops reading (paused: no 'data' listener).
    client.write(
      `POST /api/v1/chat/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Accept: text/event-stream\r\nAuthorization: ${authorization}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    const server = await waitFor(async () => serverSockets.find((s) => s.remotePort === client.localPort));

    // The model finishes and the row is stored while the client reads nothing.
    const request = await waitFor(async () => fake.requests[0]);
    await waitFor(async () => request.finished, 30_000);
    const id = await waitFor(async () => {
      const [r] = rowsOf<{ id: string; status: string }>(
        await tdb.handle.db.execute(
          sql`select id, status from chat_messages where role = 'assistant' order by created_at desc limit 1`,
        ),
      );
      return r?.status === 'completed' ? r.id : undefined;
    }, 30_000);
    // The server stopped at the socket: it waits for 'drain' with little of the reply queued in
    // user space (without backpressure the whole rest of the reply would sit in the socket's buffer).
    expect(server.writableNeedDrain).toBe(true);
    expect(server.writableLength).toBeLessThan(1_000_000);

    // Reading again: the rest arrives, the response ends, the connection stays open (keep-alive).
    client.on('data', (c: Buffer) => received.push(c));
    const decoded = await waitFor(async () => {
      const all = Buffer.concat(received);
      const head = all.indexOf('\r\n\r\n');
      return head < 0 ? undefined : (dechunk(all.subarray(head + 4)) ?? undefined);
    }, 30_000);
    const all = Buffer.concat(received);
    const head = all.toString('latin1', 0, all.indexOf('\r\n\r\n'));
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head.toLowerCase()).toContain('transfer-encoding: chunked');
    const { events } = parseSse(decoded.toString('utf8'));
    const text = events
      .filter((e) => e.data.type === 'chunk')
      .map((e) => e.data.content as string)
      .join('');
    expect(text).toBe(expected);
    expect(events.filter((e) => e.data.type === 'complete' || e.data.type === 'error')).toHaveLength(1);
    expect(events.at(-1)!.data.type).toBe('complete');
    expect(client.destroyed).toBe(false);
    const [stored] = rowsOf<{ content: string }>(
      await tdb.handle.db.execute(sql`select content from chat_messages where id = ${id}`),
    );
    expect(stored!.content).toBe(expected);
  }, 60_000);
});
