// Property-based fuzz of every route: hostile bodies, query strings, path ids and headers never give a 5xx,
// every error is the envelope with CORS headers, and a refused request writes nothing.
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { signHS256 } from './support/jwt.js';

const SECRET = 'fuzz-test-secret-0123456789abcdefgh';
const ORIGIN = 'http://localhost:3000';

let tdb: TestDb;
let app: FastifyInstance;
const redis = createTestRedis();
let token: string;
// Ids that exist, so generated requests also reach the code behind the 404s.
const known: string[] = [];

beforeAll(async () => {
  tdb = await createTestDb();
  const unlimited = '100000';
  app = await createTestApp({
    db: tdb.handle,
    redis,
    env: {
      JWT_SECRET: SECRET,
      CORS_ORIGINS: ORIGIN,
      RATE_LIMIT_CHAT_PER_MINUTE: unlimited,
      RATE_LIMIT_READ_PER_MINUTE: unlimited,
      RATE_LIMIT_INVESTIGATIONS_PER_MINUTE: unlimited,
      RATE_LIMIT_POLL_PER_MINUTE: unlimited,
      MAX_CONCURRENT_GENERATIONS: '1000',
    },
  });
  token = await signHS256(SECRET, { sub: 'fuzzer' });
  const turn = await app.inject({
    method: 'POST',
    url: '/api/v1/chat/message',
    headers: { authorization: `Bearer ${token}` },
    payload: { message: 'semente', session_id: 'fuzz-seed' },
  });
  const inv = await app.inject({ method: 'POST', url: '/api/v1/investigations/', payload: {} });
  known.push('fuzz-seed', turn.json().message_id, inv.json().investigation_id);
});
afterAll(async () => {
  await app?.close();
  await redis?.close();
  await tdb?.drop();
});

/** What a request can write synchronously: row counts, and the sessions' visible state. */
async function fingerprint(): Promise<string> {
  const [row] = rowsOf<Record<string, unknown>>(
    await tdb.handle.db.execute(sql`select
      (select count(*)::int from chat_sessions) as sessions,
      (select count(*)::int from chat_messages) as messages,
      (select count(*)::int from investigations) as investigations,
      (select md5(coalesce(string_agg(id || ':' || coalesce(title, '') || ':' || (deleted_at is null)::text, ',' order by id), ''))
         from chat_sessions) as session_state,
      (select count(*)::int from chat_messages where deleted_at is not null) as cleared`),
  );
  return JSON.stringify(row);
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
// Every route; `:id` is filled with a generated (or known) id.
const ROUTES: Array<[Method, string]> = [
  ['POST', '/api/v1/chat/stream'],
  ['POST', '/api/v1/chat/message'],
  ['POST', '/api/v1/chat/direct/maritaca'],
  ['GET', '/api/v1/chat/stream/:id'],
  ['POST', '/api/v1/chat/messages/:id/stop'],
  ['GET', '/api/v1/chat/sessions'],
  ['GET', '/api/v1/chat/sessions/:id'],
  ['PATCH', '/api/v1/chat/sessions/:id'],
  ['DELETE', '/api/v1/chat/sessions/:id'],
  ['POST', '/api/v1/chat/sessions/:id/restore'],
  ['GET', '/api/v1/chat/history/:id'],
  ['DELETE', '/api/v1/chat/history/:id'],
  ['GET', '/api/v1/chat/agents'],
  ['POST', '/api/v1/investigations/'],
  ['GET', '/api/v1/investigations/'],
  ['GET', '/api/v1/investigations/:id'],
  ['GET', '/api/v1/investigations/:id/results'],
  ['GET', '/api/v1/investigations/:id/stream'],
  ['DELETE', '/api/v1/investigations/:id'],
  ['POST', '/api/v1/investigations/public/create'],
  ['GET', '/api/v1/investigations/public/status/:id'],
  ['GET', '/api/v1/investigations/public/results/:id'],
  ['GET', '/health'],
  ['GET', '/'],
];

const NASTY = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00y',
  '\ud83d\ude00',
  '',
  ' ',
  '%',
  '%ZZ',
  '../..',
  '-'.repeat(36),
  'a'.repeat(129),
  'Feb 30 2024',
  Buffer.from('["2024","x"]').toString('base64url'),
  Buffer.from('["+275760-09-13T00:00:00.000Z","x"]').toString('base64url'),
  '1e309',
  '__proto__',
  'constructor',
  "'; drop table chat_sessions; --",
];
const nasty = fc.oneof(fc.constantFrom(...NASTY), fc.string({ unit: 'binary', maxLength: 40 }));
const fieldValue = fc.oneof(
  nasty,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(nasty, { maxLength: 3 }),
  fc.dictionary(nasty, nasty, { maxKeys: 3 }),
);
const FIELDS = [
  'message',
  'session_id',
  'agent_id',
  'context',
  'title',
  'query',
  'filters',
  'anomaly_types',
  'data_source',
  'contracts',
  'messages',
  'model',
  'organization',
];
// Ordinary text with something hostile inside it, so the rest of a body still passes validation.
const laced = fc
  .tuple(fc.string({ maxLength: 12 }), fc.constantFrom(...NASTY), fc.string({ maxLength: 12 }))
  .map(([a, n, b]) => `x${a}${n}${b}`);
const text = fc.oneof(laced, nasty, fc.string({ minLength: 1, maxLength: 20 }));
const sessionId = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/),
  fc.constantFrom('fuzz-seed', 'fuzz-other', 'a'.repeat(128)),
  nasty,
);
const context = fc.dictionary(fc.oneof(laced, fc.string({ maxLength: 8 })), fc.oneof(text, fieldValue), {
  maxKeys: 3,
});
const generic = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 2 }),
  fc.dictionary(fc.constantFrom(...FIELDS), fieldValue, { maxKeys: 5 }),
  fc.string({ unit: 'binary', maxLength: 60 }).map((raw) => ({ raw })),
);
const chatBody = fc.record(
  {
    message: text,
    session_id: sessionId,
    agent_id: fc.oneof(text, fc.constantFrom('zumbi', 'quiteria')),
    context,
  },
  { requiredKeys: ['message'] },
);
const maritacaBody = fc.record(
  {
    messages: fc.array(
      fc.record({ role: fc.constantFrom('user', 'assistant', 'x'), content: fc.oneof(text, fieldValue) }),
      {
        minLength: 1,
        maxLength: 3,
      },
    ),
    session_id: sessionId,
    model: fc.oneof(text, fc.constantFrom('sabia-4', 'sabiazinho-4')),
    context: context.map((c) => ({ ...c, maritacaModel: 'sabia-4' })),
  },
  { requiredKeys: ['messages'] },
);
const investigationBody = fc.record(
  {
    query: text,
    data_source: fc.oneof(text, fc.constantFrom('contracts', 'upload', 'expenses')),
    filters: fc.dictionary(
      fc.constantFrom(
        'organization',
        'start_date',
        'end_date',
        'orgao_codigo',
        'modalidade',
        'query',
        'max_records',
      ),
      fc.oneof(text, fieldValue, fc.constantFrom('2024-01-01', '2024-02-30', '26000')),
      { maxKeys: 3 },
    ),
    anomaly_types: fc.array(fc.oneof(text, fc.constantFrom('price', 'vendor', 'price_outlier')), {
      maxLength: 3,
    }),
    contracts: fc.array(fc.dictionary(fc.constantFrom('id', 'objeto', 'orgao', 'valor_inicial'), text), {
      maxLength: 2,
    }),
    include_explanations: fc.boolean(),
  },
  { requiredKeys: [] },
);
/** The body a route reads, usually shaped like its own (hostile inside), sometimes anything. */
function bodyFor(method: Method, path: string) {
  const own = /chat\/(stream|message)$/.test(path)
    ? chatBody
    : path.endsWith('maritaca')
      ? maritacaBody
      : method === 'PATCH'
        ? fc.record({ title: text })
        : /investigations\/(public\/create)?$/.test(path) && method === 'POST'
          ? investigationBody
          : generic;
  return fc.oneof({ arbitrary: own, weight: 3 }, { arbitrary: generic, weight: 1 });
}
const id = fc.oneof(
  fc.constantFrom(...NASTY).map((s) => (s.startsWith('%') ? s : pct(s))),
  fc.string({ unit: 'binary', maxLength: 140 }).map(pct),
  fc.constantFrom(...[0, 1, 2]).map((i) => known[i]!),
  fc.uuid(),
  fc.constantFrom('%ZZ', '%', 'a%2', '%E0%A4%A', 'x'.repeat(600)),
);
const queryString = fc
  .dictionary(
    fc.oneof(
      fc.constantFrom('limit', 'offset', 'cursor', 'before', 'after', 'query', 'anomaly_types'),
      nasty,
    ),
    fc.oneof(nasty, fc.integer().map(String)),
    { maxKeys: 3 },
  )
  .map((d) =>
    Object.entries(d)
      .map(([k, v]) => `${pct(k)}=${pct(v as string)}`)
      .join('&'),
  );
const ABSENT = '(absent)';
// Header values must be HTTP-legal to be sent at all; the hostility is in what they say.
const headerText = fc.oneof(
  fc.constantFrom('', 'x', '-'.repeat(36), 'a'.repeat(300), '1.2.3', '0-0', 'Bearer', 'bearer  x.y.z'),
  fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
);
const headers = fc.record(
  {
    'content-type': fc.oneof(
      { arbitrary: fc.constant('application/json'), weight: 6 },
      fc.constantFrom(
        'application/json; charset=utf-8',
        'application/json; charset=latin1',
        'text/plain',
        'text/csv',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'garbage',
      ),
    ),
    // Mostly absent or valid, so the body and path reach validation; sometimes hostile.
    authorization: fc.oneof(
      { arbitrary: fc.constant(ABSENT), weight: 3 },
      { arbitrary: fc.constant('valid'), weight: 2 },
      { arbitrary: headerText, weight: 1 },
    ),
    'idempotency-key': fc.oneof(
      { arbitrary: fc.constant(ABSENT), weight: 4 },
      { arbitrary: headerText, weight: 1 },
    ),
    'last-event-id': fc.oneof(
      { arbitrary: fc.constant(ABSENT), weight: 2 },
      { arbitrary: headerText, weight: 1 },
    ),
    'x-request-id': headerText,
    accept: fc.constantFrom('application/json', 'text/event-stream', '*/*'),
  },
  { requiredKeys: ['content-type', 'authorization', 'idempotency-key', 'last-event-id'] },
);

const request = fc
  .constantFrom(...ROUTES)
  .chain((route) =>
    fc.record({ route: fc.constant(route), id, query: queryString, body: bodyFor(...route), headers }),
  );

/** Percent-encodes the UTF-8 bytes (a lone surrogate goes out as U+FFFD, as a browser would send it). */
function pct(s: string): string {
  return [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0').toUpperCase()}`,
    )
    .join('');
}

function payloadOf(b: unknown): string {
  if (b === undefined) return '';
  if (b && typeof b === 'object' && 'raw' in b) return String((b as { raw: string }).raw);
  return JSON.stringify(b);
}

describe('fuzz: every route against hostile input', () => {
  it('never a 5xx; every error is the envelope with CORS; a refused request writes nothing', async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async ({ route: [method, path], id, query, body, headers }) => {
        const url = `${path.replace(':id', id)}${query ? `?${query}` : ''}`;
        const h: Record<string, string> = { ...headers, origin: ORIGIN } as Record<string, string>;
        if (h.authorization === 'valid') h.authorization = `Bearer ${token}`;
        for (const [k, v] of Object.entries(h)) if (v === ABSENT) delete h[k];
        const before = await fingerprint();
        const r = await app.inject({ method, url, headers: h, payload: payloadOf(body) });
        seen.set(r.statusCode, (seen.get(r.statusCode) ?? 0) + 1);
        const what = `${method} ${url} ${payloadOf(body).slice(0, 200)} → ${r.statusCode} ${r.body.slice(0, 300)}`;
        expect(r.statusCode, what).toBeLessThan(500);
        expect(r.headers['access-control-allow-origin'], what).toBe(ORIGIN);
        if (r.statusCode >= 400) {
          const e = r.json();
          expect(typeof e.error?.code, what).toBe('string');
          expect(typeof e.error?.message, what).toBe('string');
          expect(typeof e.detail, what).toBe('string');
          expect(typeof e.request_id, what).toBe('string');
          expect(await fingerprint(), what).toBe(before);
        }
      }),
      {
        numRuns: Number(process.env.FUZZ_RUNS ?? 600),
        seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31),
      },
    );
    // The generator reached both sides: refusals and successes.
    const codes = [...seen.keys()];
    expect(codes.some((c) => c >= 400)).toBe(true);
    expect(codes.some((c) => c < 300)).toBe(true);
  }, 120_000);
});
