// /openapi.json: covers every registered route, validates as OpenAPI 3.1, and a generated client type-checks real answers.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance, RouteOptions } from 'fastify';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { signHS256 } from './support/jwt.js';
import { parseSse } from './support/sse.js';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, any>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, any> };
};

const SECRET = 'openapi-test-jwt-secret-0123456789';
// Pages and files served for people, not API operations: the docs UI's assets, the document itself, the playground.
const UNDOCUMENTED = /^\/(docs|openapi\.json|playground)(\/|$)/;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

let tdb: TestDb;
const redis = createTestRedis();
let app: FastifyInstance;
const routes: Array<{ method: string; url: string; hidden: boolean }> = [];
let doc: Doc;

const toOpenApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}').replace(/(.)\/+$/, '$1');

beforeAll(async () => {
  tdb = await createTestDb();
  app = await createTestApp({
    db: tdb.handle,
    redis,
    env: { JWT_SECRET: SECRET },
    onRoute: (route: RouteOptions) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const hidden = Boolean((route.schema as { hide?: boolean } | undefined)?.hide);
      for (const method of methods) routes.push({ method, url: route.url, hidden });
    },
  });
  const r = await app.inject({ url: '/openapi.json' });
  expect(r.statusCode).toBe(200);
  doc = r.json();
});
afterAll(async () => {
  await app?.close();
  await redis?.close();
  await tdb?.drop();
});

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const result = await new Validator().validate(
      structuredClone(doc) as unknown as Parameters<Validator['validate']>[0],
    );
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
  });

  it('documents every registered route, and hides only the pages served for people', () => {
    const api = routes.filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS');
    expect(api.length).toBeGreaterThan(20);
    const missing = api
      .filter((r) => !r.hidden)
      .filter((r) => !doc.paths[toOpenApiPath(r.url)]?.[r.method.toLowerCase()])
      .map((r) => `${r.method} ${r.url}`);
    expect(missing).toEqual([]);
    const hidden = api.filter((r) => r.hidden).map((r) => `${r.method} ${r.url}`);
    expect(hidden.filter((h) => !UNDOCUMENTED.test(h.split(' ')[1]!))).toEqual([]);
    // And nothing in the document that is not a route.
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => METHODS.includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    const registered = new Set(api.map((r) => `${r.method} ${toOpenApiPath(r.url)}`));
    expect(documented.filter((d) => !registered.has(d))).toEqual([]);
  });

  it('gives every operation a unique verbNoun id, a summary, tags and the error envelope', () => {
    const ids = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method} ${path}`;
        expect(op.operationId, where).toMatch(/^[a-z]+[A-Z][A-Za-z0-9]*$/);
        expect(ids.has(op.operationId), `${where}: duplicate ${op.operationId}`).toBe(false);
        ids.add(op.operationId);
        expect(op.summary, where).toBeTruthy();
        expect(op.tags?.length, where).toBeGreaterThan(0);
        for (const [status, response] of Object.entries<any>(op.responses)) {
          if (Number(status) >= 400) {
            expect(response.content['application/json'].schema, `${where} ${status}`).toEqual({
              $ref: '#/components/schemas/ErrorEnvelope',
            });
          }
        }
        if (path.startsWith('/api/')) {
          expect(op.security, where).toEqual([{}, { bearerAuth: [] }]);
          expect(op.responses['401'], where).toBeDefined();
        }
      }
    }
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas.ErrorEnvelope).toMatchObject({ required: ['error', 'request_id'] });
  });

  it('describes the request schemas, the rate-limit headers and 422s from the zod schemas', () => {
    const stream = doc.paths['/api/v1/chat/stream']!.post;
    const body = stream.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(['message']);
    expect(body.properties.session_id.pattern).toBe('^[A-Za-z0-9_.:-]{1,128}$');
    expect(stream.parameters).toContainEqual(
      expect.objectContaining({ in: 'header', name: 'idempotency-key' }),
    );
    expect(Object.keys(stream.responses['200'].headers)).toEqual([
      'x-ratelimit-limit',
      'x-ratelimit-remaining',
      'x-ratelimit-reset',
    ]);
    expect(stream.responses['429'].headers['retry-after']).toBeDefined();
    expect(stream.responses['422']).toBeDefined();
    const history = doc.paths['/api/v1/chat/history/{id}']!.get;
    expect(history.parameters).toContainEqual(
      expect.objectContaining({ in: 'path', name: 'id', required: true }),
    );
    expect(history.parameters).toContainEqual(expect.objectContaining({ in: 'query', name: 'limit' }));
  });

  it('describes the SSE routes as text/event-stream with their event unions', () => {
    const union = (path: string, method: string) => {
      const content = doc.paths[path]![method].responses['200'].content;
      expect(Object.keys(content)).toEqual(['text/event-stream']);
      return (content['text/event-stream'].schema.oneOf as any[]).map((s) => s.properties.type.enum[0]);
    };
    const chat = ['start', 'detecting', 'intent', 'agent_selected', 'thinking', 'chunk', 'complete', 'error'];
    expect(union('/api/v1/chat/stream', 'post')).toEqual(expect.arrayContaining(chat));
    expect(union('/api/v1/chat/stream/{message_id}', 'get')).toEqual(expect.arrayContaining(chat));
    expect(union('/api/v1/investigations/{id}/stream', 'get')).toEqual(['progress', 'anomaly', 'completion']);
  });

  it('serves the same document at /docs for JSON clients, and the interactive page for browsers', async () => {
    const json = await app.inject({ url: '/docs', headers: { accept: 'application/json' } });
    expect(json.json()).toEqual(doc);
    const page = await app.inject({ url: '/docs', headers: { accept: 'text/html' } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toMatch(/swagger-ui/i);
  });
});

describe('a client generated from the document', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'openapi-client-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Type-checks `source` against the generated `paths`; returns the diagnostics' messages. */
  function typecheck(source: string): string[] {
    writeFileSync(join(dir, 'check.ts'), source);
    const program = ts.createProgram([join(dir, 'check.ts')], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      types: [],
    });
    // Each diagnostic as "<the declaration it is in>: <message>".
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
      const declaration = /^export const (\w+)/.exec(source.split('\n')[line] ?? '')?.[1] ?? '?';
      return `${declaration}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
  }

  it('type-checks real answers, and rejects a wrong one', async () => {
    writeFileSync(join(dir, 'api.ts'), astToString(await openapiTS(structuredClone(doc) as any)));

    const token = await signHS256(SECRET, { sub: 'client-user' });
    const auth = { authorization: `Bearer ${token}` };
    const turn = await app.inject({
      method: 'POST',
      url: '/api/v1/chat/message',
      headers: auth,
      payload: { message: 'olá' },
    });
    expect(turn.statusCode).toBe(200);
    const sessionId = turn.json().session_id as string;
    const stream = await app.inject({
      method: 'POST',
      url: '/api/v1/chat/stream',
      headers: auth,
      payload: { message: 'e agora?', session_id: sessionId },
    });
    const events = parseSse(stream.body).events.map((e) => e.data);
    const get = async (url: string) => {
      const r = await app.inject({ url, headers: auth });
      expect(r.statusCode, `${url}: ${r.body}`).toBe(200);
      return r.body;
    };
    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/investigations/',
      headers: auth,
      payload: { query: 'contratos', data_source: 'contracts' },
    });
    expect(created.statusCode).toBe(202);
    const investigationId = created.json().investigation_id as string;
    for (const until = Date.now() + 20_000; ; ) {
      const r = await app.inject({ url: `/api/v1/investigations/${investigationId}`, headers: auth });
      if (r.json().status === 'completed') break;
      if (Date.now() > until) throw new Error('the investigation did not complete');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const answers = {
      created: created.body,
      investigation: await get(`/api/v1/investigations/${investigationId}`),
      investigations: await get('/api/v1/investigations/'),
      results: await get(`/api/v1/investigations/${investigationId}/results`),
      agents: await get('/api/v1/chat/agents'),
      sessions: await get('/api/v1/chat/sessions'),
      session: await get(`/api/v1/chat/sessions/${sessionId}`),
      history: await get(`/api/v1/chat/history/${sessionId}`),
      message: turn.body,
    };

    const check = (extra = '') => `import type { paths } from './api';
type Json<R> = R extends { content: { 'application/json': infer T } } ? T : never;
type Sse<R> = R extends { content: { 'text/event-stream': infer T } } ? T : never;
export const agents: Json<paths['/api/v1/chat/agents']['get']['responses'][200]> = ${answers.agents};
export const sessions: Json<paths['/api/v1/chat/sessions']['get']['responses'][200]> = ${answers.sessions};
export const session: Json<paths['/api/v1/chat/sessions/{id}']['get']['responses'][200]> = ${answers.session};
export const history: Json<paths['/api/v1/chat/history/{id}']['get']['responses'][200]> = ${answers.history};
export const message: Json<paths['/api/v1/chat/message']['post']['responses'][200]> = ${answers.message};
export const created: Json<paths['/api/v1/investigations']['post']['responses'][202]> = ${answers.created};
export const investigation: Json<paths['/api/v1/investigations/{id}']['get']['responses'][200]> = ${answers.investigation};
export const investigations: Json<paths['/api/v1/investigations']['get']['responses'][200]> = ${answers.investigations};
export const results: Json<paths['/api/v1/investigations/{id}/results']['get']['responses'][200]> = ${answers.results};
export const events: Array<Sse<paths['/api/v1/chat/stream']['post']['responses'][200]>> = ${JSON.stringify(events)};
${extra}`;
    expect(typecheck(check())).toEqual([]);

    // The same check fails for an answer that breaks the schema: the types are not `unknown`.
    const broken = { ...JSON.parse(answers.investigation), records_processed: 'many' };
    const wrong = typecheck(
      check(`export const bad: Json<paths['/api/v1/investigations/{id}']['get']['responses'][200]> = ${JSON.stringify(broken)};
export const badSessions: Json<paths['/api/v1/chat/sessions']['get']['responses'][200]> = ${JSON.stringify({ ...JSON.parse(answers.sessions), count: 'many' })};
export const badEvent: Sse<paths['/api/v1/chat/stream']['post']['responses'][200]> = { type: 'chunk', agent_id: 'x' };`),
    );
    expect(wrong.map((w) => w.split(':')[0])).toEqual(['bad', 'badSessions', 'badEvent']);
    expect(wrong[2]).toMatch(/content/);
  }, 60_000);
});
