// The frontend's investigation pages (API.md §6.1) driven with its exact requests: create, status, results, share links, polling.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvestigationRepo } from '../src/modules/investigations/investigations.repo.js';
import { ANOMALY_TYPES } from '../src/modules/investigations/types.js';
import { FRONTEND_ANOMALY_TYPES, FRONTEND_FILTERS } from '../src/modules/investigations/vocabulary.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { dbHelpers, expectEnvelope, frontendClient, isoOrNull, ORIGIN, until } from './support/frontend.js';
import { signHS256 } from './support/jwt.js';

const SECRET = 'investigation-pages-secret-0123456789';
const INV = '/api/v1/investigations';

let tdb: TestDb;
let app: FastifyInstance;
const redis = createTestRedis();

beforeAll(async () => {
  tdb = await createTestDb();
  app = await createTestApp({ db: tdb.handle, redis, env: { JWT_SECRET: SECRET, CORS_ORIGINS: ORIGIN } });
});
afterAll(async () => {
  await app?.close();
  await redis?.close();
  await tdb?.drop();
});

const axios = frontendClient(() => app, SECRET);
const { q, count } = dbHelpers(() => tdb.handle);

function expectStatusShape(s: any) {
  expect(typeof s.investigation_id).toBe('string');
  expect(typeof s.title).toBe('string');
  expect(['pending', 'running', 'completed', 'failed', 'cancelled']).toContain(s.status);
  expect(typeof s.progress).toBe('number');
  expect(s.progress).toBeGreaterThanOrEqual(0);
  expect(s.progress).toBeLessThanOrEqual(1);
  expect(typeof s.current_phase).toBe('string');
  expect(s.current_phase).not.toMatch(/^[a-z_:]+$/); // a sentence, not a code
  expect(Number.isInteger(s.records_processed)).toBe(true);
  expect(Number.isInteger(s.anomalies_detected)).toBe(true);
  for (const k of ['estimated_completion', 'created_at', 'started_at', 'completed_at']) {
    expect(isoOrNull(s[k]), `${k}=${s[k]}`).toBe(true);
  }
  expect(s.created_at).not.toBeNull();
}

describe('investigation pages (API.md §6.1)', () => {
  const DEFAULT_BODY = {
    query: 'Contratos suspeitos',
    data_source: 'contracts',
    filters: {},
    anomaly_types: ['price', 'vendor', 'temporal'],
    include_explanations: true,
    stream_results: false,
  };

  it('the README documents the vocabulary table the code uses', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const [front, native] of Object.entries(FRONTEND_ANOMALY_TYPES)) {
      expect(readme).toContain(`| \`${front}\` | \`${native}\` |`);
    }
    for (const front of Object.keys(FRONTEND_FILTERS)) expect(readme).toContain(`\`${front}\``);
    expect(new Set(Object.values(FRONTEND_ANOMALY_TYPES))).toEqual(new Set(ANOMALY_TYPES));
  });

  it('create → status → results on the bundled sample, readable by id by another user', async () => {
    const created = await axios('POST', `${INV}/public/create`, { body: DEFAULT_BODY, user: 'alice' });
    expect(created.statusCode, created.body).toBeGreaterThanOrEqual(200);
    expect(created.statusCode).toBeLessThan(300);
    const c = created.json();
    expect(typeof c.investigation_id).toBe('string');
    expect(c.status).toBe('pending');
    expect(typeof c.message).toBe('string');
    const id = c.investigation_id;

    const progress: number[] = [];
    const done = await until(
      async () => {
        const r = await axios('GET', `${INV}/public/status/${id}`, { user: 'alice' });
        expect(r.statusCode).toBe(200);
        const s = r.json();
        expectStatusShape(s);
        progress.push(s.progress);
        return s;
      },
      (s) => s.status === 'completed',
    );
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(done.progress).toBe(1);
    expect(done.records_processed).toBeGreaterThan(0);

    const r = await axios('GET', `${INV}/public/results/${id}`, { user: 'alice' });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['cache-control']).toMatch(/^private, max-age=\d+$/);
    const res = r.json();
    expect(res.investigation_id).toBe(id);
    expect(res.status).toBe('completed');
    expect(isoOrNull(res.started_at) && isoOrNull(res.completed_at)).toBe(true);
    expect(res.anomalies_found).toBe(res.results.length);
    expect(res.anomalies_found).toBe(done.anomalies_detected);
    expect(res.total_records_analyzed).toBe(done.records_processed);
    expect(typeof res.summary).toBe('string');
    expect(res.confidence_score).toBeGreaterThanOrEqual(0);
    expect(res.confidence_score).toBeLessThanOrEqual(1);
    expect(typeof res.processing_time).toBe('number');
    expect(res.metadata.is_demo_mode).toBe(true);
    expect(Array.isArray(res.metadata.sources)).toBe(true);
    const types = new Set(res.results.map((a: { type: string }) => a.type));
    expect([...types].sort()).toEqual(['price', 'temporal', 'vendor']);
    for (const a of res.results) {
      expect(typeof a.anomaly_id).toBe('string');
      expect(['high', 'medium', 'low']).toContain(a.severity);
      expect(a.confidence).toBeGreaterThanOrEqual(0);
      expect(a.confidence).toBeLessThanOrEqual(1);
      expect(a.description.trim().length).toBeGreaterThan(0);
      expect(a.explanation.trim().length).toBeGreaterThan(0);
      expect(a.affected_records.length).toBeGreaterThan(0);
      for (const rec of a.affected_records) {
        expect(rec.data.id).toBe(rec.id);
        expect(typeof rec.data.fornecedor).toBe('string');
        expect(typeof rec.data.orgao).toBe('string');
        expect(typeof rec.data.valor_final).toBe('number');
      }
      expect(a.suggested_actions.length).toBeGreaterThan(0);
      expect(a.suggested_actions.join(' ')).toMatch(/Lei de Acesso à Informação/);
      expect(a.suggested_actions.join(' ')).toMatch(/ouvidoria|CGU|TCU/);
      const cut =
        a.metadata.severity_score >= 0.7 ? 'high' : a.metadata.severity_score >= 0.4 ? 'medium' : 'low';
      expect(a.severity).toBe(cut);
      expect(a.metadata.detector).toBe(FRONTEND_ANOMALY_TYPES[a.type as keyof typeof FRONTEND_ANOMALY_TYPES]);
    }
    // The native results carry no contract data in their evidence.
    const native = await axios('GET', `${INV}/${id}/results`, { user: 'alice' });
    expect(JSON.stringify(native.json())).not.toContain('affected_contracts');

    // A share link: bob reads it by id, anonymous too; neither can cancel it or see it in a list.
    for (const user of ['bob', undefined]) {
      const s = await axios('GET', `${INV}/public/status/${id}`, { user });
      expect(s.statusCode).toBe(200);
      expect(s.headers['cache-control']).toMatch(/^private, max-age=/);
      expect((await axios('GET', `${INV}/public/results/${id}`, { user })).json().results).toHaveLength(
        res.results.length,
      );
      expect((await axios('DELETE', `${INV}/${id}`, { user })).statusCode).toBe(404);
    }
    expect((await axios('GET', `${INV}/`, { user: 'bob' })).json()).toEqual([]);
    const list = (await axios('GET', `${INV}/`, { user: 'alice' })).json();
    expect(list).toHaveLength(1);
    expectStatusShape(list[0]);
  });

  it('an uploaded-data investigation is owner-only on public/*', async () => {
    const contract = {
      id: 'up-1',
      objeto: 'Serviço',
      orgao: 'Órgão X',
      orgao_codigo: '123',
      fornecedor: 'Empresa Y',
      cnpj_fornecedor: '12.345.678/0001-90',
      valor_inicial: 1000,
      data_assinatura: '2024-01-10',
      modalidade: 'Pregão',
    };
    const created = await axios('POST', `${INV}/public/create`, {
      body: { data_source: 'upload', contracts: [contract], anomaly_types: ['payment'] },
      user: 'carol',
    });
    expect(created.statusCode, created.body).toBe(202);
    const id = created.json().investigation_id;
    await until(
      async () => (await axios('GET', `${INV}/public/status/${id}`, { user: 'carol' })).json(),
      (s) => s.status === 'completed',
    );
    expect((await axios('GET', `${INV}/public/results/${id}`, { user: 'carol' })).statusCode).toBe(200);
    for (const user of ['dave', undefined]) {
      expectEnvelope(await axios('GET', `${INV}/public/status/${id}`, { user }), 404);
      expectEnvelope(await axios('GET', `${INV}/public/results/${id}`, { user }), 404);
    }
  });

  it('a cancelled investigation reads cancelled; results of a running one are 409, not cached', async () => {
    const created = await axios('POST', `${INV}/public/create`, { body: DEFAULT_BODY, user: 'erin' });
    const id = created.json().investigation_id;
    const early = await axios('GET', `${INV}/public/results/${id}`, { user: 'erin' });
    if (early.statusCode === 409) expect(early.headers['cache-control']).toBe('no-store');
    await axios('DELETE', `${INV}/${id}`, { user: 'erin' });
    const s = (await axios('GET', `${INV}/public/status/${id}`, { user: 'erin' })).json();
    expect(['cancelled', 'completed']).toContain(s.status);
  });

  it('progress never goes back, even when a run is handed to a new run after a restart', async () => {
    const repo = createInvestigationRepo(tdb.handle.db);
    const id = randomUUID();
    await tdb.handle.db.transaction((tx) =>
      repo.insert(
        tx,
        { id, query: 'p', dataSource: 'contracts', sourceKind: 'sample', anomalyTypes: ['price_outlier'] },
        null,
      ),
    );
    const first = (await repo.claimRun(id, 'instance-a'))!;
    expect(await repo.progress(id, first.runCount, { progress: 0.6 })).toBe(true);
    await repo.requeue(id, first.runCount, 'requeued');
    const second = (await repo.claimRun(id, 'instance-b'))!;
    expect(second.runCount).toBe(first.runCount + 1);
    const read = async () =>
      (await axios('GET', `${INV}/public/status/${id}`)).json() as {
        progress: number;
        current_phase: string;
      };
    expect((await read()).progress).toBeCloseTo(0.6, 3);
    await repo.progress(id, second.runCount, { progress: 0.1, currentPhase: 'collecting' });
    expect(await read()).toMatchObject({
      progress: expect.closeTo(0.6, 3),
      current_phase: 'Coletando contratos',
    });
    await repo.progress(id, second.runCount, { progress: 0.8 });
    expect((await read()).progress).toBeCloseTo(0.8, 3);
  });

  it('frontend data sources without data are 422 naming what is supported; nothing is written', async () => {
    const before = await count('investigations');
    for (const data_source of ['expenses', 'agreements', 'biddings', 'servants']) {
      const r = await axios('POST', `${INV}/public/create`, {
        body: { ...DEFAULT_BODY, data_source },
        user: 'f',
      });
      const body = expectEnvelope(r, 422);
      expect(JSON.stringify(body.error.details)).toContain('contracts');
    }
    expect(await count('investigations')).toBe(before);
  });

  it('frontend filter names filter the contracts like the native ones', async () => {
    const run = async (filters: Record<string, string>) => {
      const r = await axios('POST', `${INV}/public/create`, {
        body: { ...DEFAULT_BODY, anomaly_types: ['pattern'], filters },
        user: 'gina',
      });
      expect(r.statusCode, r.body).toBe(202);
      const id = r.json().investigation_id;
      const [row] = await q<{ filters: Record<string, unknown> }>(
        sql`select filters from investigations where id = ${id}`,
      );
      return { id, filters: row!.filters };
    };
    const a = await run({ start_date: '2024-01-01', end_date: '2024-06-30', organization: '26000' });
    expect(a.filters).toMatchObject({
      data_inicio: '2024-01-01',
      data_fim: '2024-06-30',
      orgao_codigo: '26000',
    });
    const b = await run({ organization: 'Ministério da Saúde' });
    // The name is understood as the agency (query understanding, src/modules/query/).
    expect(b.filters).toHaveProperty('orgao');
    expect(b.filters).not.toHaveProperty('organization');
  });

  it('the poll reads have their own budget: a page polling back to back leaves chat reads alone', async () => {
    const limited = await createTestApp({
      db: tdb.handle,
      redis,
      env: { JWT_SECRET: SECRET, RATE_LIMIT_READ_PER_MINUTE: '5', RATE_LIMIT_POLL_PER_MINUTE: '1000' },
    });
    try {
      // A user of its own: the limiter's buckets are shared with the other apps of this file.
      const headers = { authorization: `Bearer ${await signHS256(SECRET, { sub: `poller-${Date.now()}` })}` };
      const created = await limited.inject({
        method: 'POST',
        url: `${INV}/public/create`,
        payload: {},
        headers,
      });
      const id = created.json().investigation_id;
      for (let i = 0; i < 20; i++) {
        const r = await limited.inject({ url: `${INV}/public/status/${id}`, headers });
        expect(r.statusCode).toBe(200);
      }
      const reads: number[] = [];
      for (let i = 0; i < 6; i++)
        reads.push((await limited.inject({ url: '/api/v1/chat/sessions', headers })).statusCode);
      expect(reads).toEqual([200, 200, 200, 200, 200, 429]);
    } finally {
      await limited.close();
    }
  });

  it('POST /investigations/ is rate-limited by RATE_LIMIT_INVESTIGATIONS_PER_MINUTE', async () => {
    const limited = await createTestApp({
      db: tdb.handle,
      redis,
      env: { JWT_SECRET: SECRET, RATE_LIMIT_INVESTIGATIONS_PER_MINUTE: '2' },
    });
    try {
      // A user of its own: the limiter's buckets are shared with the other apps of this file.
      const headers = {
        authorization: `Bearer ${await signHS256(SECRET, { sub: `starter-${Date.now()}` })}`,
      };
      const before = await count('investigations');
      const codes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await limited.inject({
          method: 'POST',
          url: `${INV}/`,
          payload: { query: `rl ${i}` },
          headers,
        });
        codes.push(r.statusCode);
      }
      expect(codes).toEqual([202, 202, 429]);
      expect(await count('investigations')).toBe(before + 2);
    } finally {
      await limited.close();
    }
  });
});
