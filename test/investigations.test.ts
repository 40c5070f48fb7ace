// Investigations over HTTP: uploads and sources, durable runs, cancel, restart, ownership, SSE progress.
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDb, type DbHandle, rowsOf } from '../src/db/client.js';
import { SAMPLE_CONTRACTS, SAMPLE_PLANTED } from '../src/modules/investigations/data/sample-contracts.js';
import type { Contract } from '../src/modules/investigations/types.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { type FakePortal, startFakePortal, toPortalRecord } from './support/fake-portal.js';
import { signHS256 } from './support/jwt.js';
import { parseSse, streamRequest } from './support/sse.js';

const SECRET = 'investigations-test-secret-0123456789';
const API_KEY = 'portal-test-key';
const BASE = '/api/v1/investigations';
const TERMINAL = ['completed', 'failed', 'cancelled'];

let tdb: TestDb;
const redis = createTestRedis();
// Every instance runs workers on the shared queue: each test closes what it opened, so no
// instance configured for another test can pick up its jobs.
const opened: Array<{ close(): Promise<unknown> }> = [];
beforeAll(async () => {
  tdb = await createTestDb();
});
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});
afterAll(async () => {
  await redis?.close();
  await tdb.drop();
});

/** One app instance on the shared test database (on Postgres, with its own connection pool). */
async function instance(env: Record<string, string> = {}, db?: DbHandle): Promise<FastifyInstance> {
  let handle = db ?? tdb.handle;
  if (!db && tdb.url) {
    handle = await createDb({ databaseUrl: tdb.url, poolMax: 5 });
    opened.push(handle);
  }
  // These tests start many investigations from one address: the per-minute cap is tested in frontend.test.ts.
  const app = await createTestApp({
    db: handle,
    redis,
    env: { JWT_SECRET: SECRET, RATE_LIMIT_INVESTIGATIONS_PER_MINUTE: '100000', ...env },
  });
  opened.push(app);
  return app;
}

const bearer = async (sub: string) => ({ authorization: `Bearer ${await signHS256(SECRET, { sub })}` });
const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await tdb.handle.db.execute(query));
const count = async (table: string) =>
  (await q<{ n: number }>(sql`select count(*)::int as n from ${sql.raw(table)}`))[0]!.n;

async function create(app: FastifyInstance, payload: unknown, headers: Record<string, string> = {}) {
  const r = await app.inject({ method: 'POST', url: `${BASE}/`, payload: payload as object, headers });
  expect(r.statusCode, r.body).toBe(202);
  return r.json() as { investigation_id: string; status: string; sample_data: boolean };
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 25_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`condition not met in time: ${JSON.stringify(v).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the investigation's queue job is no longer active (its handler has returned). */
const jobEnded = (id: string) =>
  until(
    async () =>
      (
        await q<{ state: string }>(
          sql`select j.state from pgboss.job j join investigations i on i.job_id = j.id where i.id = ${id}`,
        )
      )[0]?.state,
    (state) => state !== undefined && state !== 'active' && state !== 'created' && state !== 'retry',
  );

const statusOf = async (app: FastifyInstance, id: string, headers: Record<string, string> = {}) =>
  (await app.inject({ url: `${BASE}/${id}`, headers })).json();
const finished = (app: FastifyInstance, id: string, headers: Record<string, string> = {}) =>
  until(
    () => statusOf(app, id, headers),
    (s) => TERMINAL.includes(s.status),
  );

const signature = (f: { type: string; contract_ids: string[] }) =>
  `${f.type} ${[...f.contract_ids].sort().join(',')}`;
const PLANTED = SAMPLE_PLANTED.map(signature).sort();

/** Four agencies, 24 months, four categories, evenly spread suppliers: nothing to find. */
function cleanDataset(): Contract[] {
  const cats = [
    ['Aquisição de material de escritório', 20_000, 'Pregão'],
    ['Contratação de serviços de limpeza e conservação', 300_000, 'Pregão'],
    ['Aquisição de equipamentos de informática', 120_000, 'Pregão'],
    ['Fornecimento de água mineral', 8_000, 'Dispensa de Licitação'],
  ] as const;
  const out: Contract[] = [];
  for (let a = 1; a <= 4; a++) {
    for (let m = 0; m < 24; m++) {
      for (let k = 0; k < 4; k++) {
        const [objeto, base, modalidade] = cats[k]!;
        const vi = Math.round(base * (0.85 + (0.3 * ((a * 7 + m * 3 + k * 5) % 11)) / 10) * 100) / 100;
        const s = (a + m + k) % 8;
        const month = String((m % 12) + 1).padStart(2, '0');
        out.push({
          id: `clean-${a}-${m}-${k}`,
          numero: null,
          objeto,
          orgao: `Órgão ${a}`,
          orgao_codigo: `1000${a}`,
          fornecedor: `Fornecedor ${s} Ltda`,
          cnpj_fornecedor: `${String(s).padStart(2, '0')}.222.333/0001-${String(s).padStart(2, '0')}`,
          valor_inicial: vi,
          valor_final: (a + m + k) % 5 === 0 ? Math.round(vi * 110) / 100 : vi,
          data_assinatura: `${2024 + Math.floor(m / 12)}-${month}-${String(3 + k * 7).padStart(2, '0')}`,
          modalidade,
          situacao: 'Ativo',
        });
      }
    }
  }
  return out;
}

/** A Portal serving the sample as Portal records, each page held `delayMs` so a run takes a while. */
// The real /contratos needs an agency and a date window: every sample contract is listed under one
// superior agency (code 20000) and the investigations below ask for it, over 2024–2025.
const PORTAL_QUERY = 'contratos do órgão 20000 de 2024 a 2025';
async function slowPortal(delayMs: number): Promise<FakePortal> {
  const portal = await startFakePortal({
    records: SAMPLE_CONTRACTS.map((c) => {
      const r = toPortalRecord(c);
      (r.unidadeGestora as Record<string, unknown>).orgaoMaximo = {
        codigo: '20000',
        nome: 'Poder Executivo',
      };
      return r;
    }),
    apiKey: API_KEY,
  });
  portal.enqueue(...Array.from({ length: 400 }, () => ({ delayMs })));
  opened.push(portal);
  return portal;
}
const portalEnv = (p: FakePortal) => ({
  TRANSPARENCY_API_KEY: API_KEY,
  TRANSPARENCY_API_BASE_URL: p.baseUrl,
});

describe('investigations', () => {
  let app: FastifyInstance;
  beforeEach(async () => {
    app = await instance();
  });

  it('finds every planted anomaly in an uploaded dataset and stores it', async () => {
    const {
      investigation_id: id,
      status,
      sample_data,
    } = await create(app, {
      query: 'amostra enviada',
      contracts: SAMPLE_CONTRACTS,
    });
    expect([status, sample_data]).toEqual(['pending', false]);
    const done = await finished(app, id);
    expect(done).toMatchObject({
      status: 'completed',
      progress: 1,
      data_source: 'upload',
      sample_data: false,
    });
    const r = await app.inject({ url: `${BASE}/${id}/results` });
    expect(r.statusCode).toBe(200);
    const results = r.json();
    expect(results.records_analyzed).toBe(SAMPLE_CONTRACTS.length);
    expect(results.findings.map(signature).sort()).toEqual(PLANTED);
    expect(results.anomalies_found).toBe(SAMPLE_PLANTED.length);
    for (const f of results.findings) {
      expect(f.explanation.length).toBeGreaterThan(20);
      expect(Object.keys(f.evidence).length).toBeGreaterThan(0);
    }
    const stored = await q<{ finding_id: string; type: string }>(
      sql`select finding_id, type from investigation_findings where investigation_id = ${id} order by seq`,
    );
    expect(stored.map((s) => s.finding_id)).toEqual(results.findings.map((f: { id: string }) => f.id));
    const [row] = await q<{ run_count: number; anomalies_detected: number }>(
      sql`select run_count, anomalies_detected from investigations where id = ${id}`,
    );
    expect(row).toEqual({ run_count: 1, anomalies_detected: SAMPLE_PLANTED.length });
    // The entity graph (written just after completion): every agency and supplier, linked, the
    // planted ones at risk.
    const agencies = new Set(SAMPLE_CONTRACTS.map((c) => c.orgao_codigo)).size;
    const nodes = await until(
      () =>
        q<{ kind: string; n: number; risky: number }>(
          sql`select kind, count(*)::int as n, count(*) filter (where risk_score > 0)::int as risky
              from entity_nodes where last_investigation_id = ${id} group by kind order by kind`,
        ),
      (rows) => rows.length === 2,
    );
    expect(nodes[0]).toMatchObject({ kind: 'agency', n: agencies });
    expect(nodes[0]!.risky).toBeGreaterThan(0);
    const pairs = new Set(SAMPLE_CONTRACTS.map((c) => `${c.orgao_codigo}|${c.cnpj_fornecedor}`)).size;
    await until(
      () => count('entity_relationships'),
      (n) => n === pairs,
    );
    expect(await count('investigation_inputs')).toBe(0); // an ended investigation drops its upload
  });

  it('finds nothing in a clean dataset', async () => {
    const clean = cleanDataset();
    const { investigation_id: id } = await create(app, { data_source: 'upload', contracts: clean });
    expect((await finished(app, id)).status).toBe('completed');
    const results = (await app.inject({ url: `${BASE}/${id}/results` })).json();
    expect(results).toMatchObject({ records_analyzed: clean.length, anomalies_found: 0, findings: [] });
    expect(results.summary).toMatch(
      new RegExp(`^Seleção: todos os contratos \\(${clean.length} contratos\\)\\. Nenhuma anomalia`),
    );
  });

  it('reads the bundled sample when there is no Portal key, and says so in every answer', async () => {
    const created = await create(app, { query: 'contratos federais', data_source: 'contracts' });
    expect(created.sample_data).toBe(true);
    const done = await finished(app, created.investigation_id);
    expect(done).toMatchObject({ status: 'completed', sample_data: true, data_source: 'contracts' });
    const results = (await app.inject({ url: `${BASE}/${created.investigation_id}/results` })).json();
    expect(results.sample_data).toBe(true);
    expect(results.summary).toMatch(/dados de exemplo/);
    expect(results.findings.map(signature).sort()).toEqual(PLANTED);
  });

  it('accepts a CSV upload with options on the querystring', async () => {
    const rows = cleanDataset().slice(0, 40);
    const header =
      'id;objeto;orgao;orgao_codigo;fornecedor;cnpj_fornecedor;valor_inicial;data_assinatura;modalidade';
    const lines = rows.map((c) =>
      [
        c.id,
        c.objeto,
        c.orgao,
        c.orgao_codigo,
        c.fornecedor,
        c.cnpj_fornecedor,
        String(c.valor_inicial).replace('.', ','),
        c.data_assinatura,
        c.modalidade,
      ].join(';'),
    );
    const r = await app.inject({
      method: 'POST',
      url: `${BASE}/?anomaly_types=value_increase,price_outlier&query=csv`,
      headers: { 'content-type': 'text/csv' },
      payload: [header, ...lines].join('\n'),
    });
    expect(r.statusCode, r.body).toBe(202);
    const done = await finished(app, r.json().investigation_id);
    expect(done).toMatchObject({ status: 'completed', records_processed: 40, query: 'csv' });
    expect(done.anomaly_types).toEqual(['value_increase', 'price_outlier']);
  });

  it('refuses bad input with a 4xx JSON error and writes nothing', async () => {
    const small = await instance({ INVESTIGATION_MAX_CONTRACTS: '5' });
    const before = await Promise.all(['investigations', 'investigation_inputs', 'pgboss.job'].map(count));
    const one = SAMPLE_CONTRACTS[0]!;
    const cases: Array<[FastifyInstance, Record<string, unknown>, string | undefined, number]> = [
      [app, { anomaly_types: ['price_outlier', 'astrology'] }, undefined, 422],
      [small, { contracts: SAMPLE_CONTRACTS.slice(0, 6) }, undefined, 422],
      [app, { contracts: [one, { ...one, id: 'x', data_assinatura: '2024-02-30' }] }, undefined, 422],
      [app, { data_source: 'upload' }, undefined, 422],
      [app, { data_source: 'contracts', contracts: [one] }, undefined, 422],
      [app, { filters: { data_inicio: 'ontem' } }, undefined, 422],
      [app, {}, 'objeto;orgao\n"nunca fechado', 422],
      [app, {}, '', 422],
    ];
    for (const [target, payload, csv, code] of cases) {
      const r = await target.inject({
        method: 'POST',
        url: `${BASE}/`,
        ...(csv === undefined ? { payload } : { payload: csv, headers: { 'content-type': 'text/csv' } }),
      });
      expect(r.statusCode, `${JSON.stringify(payload)} ${csv}: ${r.body}`).toBe(code);
      expect(r.headers['content-type']).toMatch(/application\/json/);
      expect(r.json().error.code).toBe('VALIDATION_ERROR');
    }
    const bad = await app.inject({
      method: 'POST',
      url: `${BASE}/`,
      payload: { contracts: [{ ...one, valor_inicial: -1 }] },
    });
    expect(bad.json().error.details[0]).toMatchObject({ index: 0, path: 'valor_inicial' });
    const after = await Promise.all(['investigations', 'investigation_inputs', 'pgboss.job'].map(count));
    expect(after).toEqual(before);
    expect((await app.inject({ url: `${BASE}/not-a-uuid` })).statusCode).toBe(404);
    expect((await app.inject({ url: `${BASE}/${crypto.randomUUID()}/results` })).json().error.code).toBe(
      'INVESTIGATION_NOT_FOUND',
    );
  });

  it('lists only the caller’s own, newest first, as an array; [] for anonymous', async () => {
    const alice = await bearer('alice');
    const bob = await bearer('bob');
    const a1 = await create(app, { query: 'a1', data_source: 'contracts' }, alice);
    const a2 = await create(app, { query: 'a2', data_source: 'contracts' }, alice);
    const b1 = await create(app, { query: 'b1', data_source: 'contracts' }, bob);
    const anon = await create(app, { query: 'anon', data_source: 'contracts' });
    const list = (h: Record<string, string> = {}) =>
      app.inject({ url: `${BASE}/`, headers: h }).then((r) => r.json());
    expect(await list()).toEqual([]);
    expect((await list(alice)).map((i: { query: string }) => i.query)).toEqual(['a2', 'a1']);
    expect((await list(bob)).map((i: { investigation_id: string }) => i.investigation_id)).toEqual([
      b1.investigation_id,
    ]);
    for (const path of ['', '/results', '/stream']) {
      const r = await app.inject({ url: `${BASE}/${a1.investigation_id}${path}`, headers: bob });
      expect(r.statusCode).toBe(404);
      expect((await app.inject({ url: `${BASE}/${a2.investigation_id}${path}` })).statusCode).toBe(404);
    }
    const del = await app.inject({ method: 'DELETE', url: `${BASE}/${a1.investigation_id}`, headers: bob });
    expect(del.statusCode).toBe(404);
    // An anonymous investigation is a capability: whoever holds the id may read it.
    expect((await app.inject({ url: `${BASE}/${anon.investigation_id}`, headers: bob })).statusCode).toBe(
      200,
    );
    const invalid = await app.inject({ url: `${BASE}/`, headers: { authorization: 'Bearer x.y.z' } });
    expect(invalid.statusCode).toBe(401);
    for (const i of [a1, a2, b1]) await finished(app, i.investigation_id, i === b1 ? bob : alice);
  });
});

describe('durable runs', () => {
  it('answers 409 on results while running, and cancel stops the work within a step', async () => {
    const portal = await slowPortal(150);
    const app = await instance(portalEnv(portal));
    const { investigation_id: id, sample_data } = await create(app, { query: PORTAL_QUERY });
    expect(sample_data).toBe(false);
    await until(
      () => statusOf(app, id),
      (s) => s.status === 'running' && s.records_processed > 0,
    );
    const busy = await app.inject({ url: `${BASE}/${id}/results` });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().error.code).toBe('INVESTIGATION_RUNNING');
    const del = await app.inject({ method: 'DELETE', url: `${BASE}/${id}` });
    expect(del.json()).toMatchObject({ status: 'cancelled', current_phase: 'cancelled' });
    const requestsAtCancel = portal.requests.length;
    const seenAtCancel = (await statusOf(app, id)).records_processed;
    // The worker's job ends when the run has stopped: no Portal request can follow it.
    await jobEnded(id);
    expect(portal.requests.length).toBeLessThanOrEqual(requestsAtCancel + 1);
    expect(await statusOf(app, id)).toMatchObject({ status: 'cancelled', records_processed: seenAtCancel });
    expect((await app.inject({ url: `${BASE}/${id}/results` })).json().status).toBe('cancelled');
    expect((await app.inject({ method: 'DELETE', url: `${BASE}/${id}` })).statusCode).toBe(200);
  });

  it('stops a run on another instance when cancelled here', async () => {
    const portal = await slowPortal(150);
    const a = await instance(portalEnv(portal));
    const b = await instance(portalEnv(portal));
    const { investigation_id: id } = await create(a, { query: PORTAL_QUERY });
    await until(
      () => statusOf(a, id),
      (s) => s.status === 'running' && s.records_processed > 0,
    );
    const runner = (
      await q<{ instance_id: string }>(sql`select instance_id from investigations where id = ${id}`)
    )[0]!.instance_id;
    const other = runner === a.infra.instanceId ? b : a;
    expect((await other.inject({ method: 'DELETE', url: `${BASE}/${id}` })).json().status).toBe('cancelled');
    // The run notices within one cancel poll; its job then ends and no Portal request follows.
    await jobEnded(id);
    const settled = portal.requests.length;
    await until(
      () => statusOf(a, id),
      (s) => s.status === 'cancelled',
    );
    expect(portal.requests.length).toBe(settled);
    expect((await statusOf(a, id)).status).toBe('cancelled');
  });

  it('survives a restart mid-run: the next instance completes it', async () => {
    const portal = await slowPortal(40);
    const first = await instance(portalEnv(portal));
    const { investigation_id: id } = await create(first, { query: PORTAL_QUERY });
    await until(
      () => statusOf(first, id),
      (s) => s.status === 'running' && s.records_processed > 100,
    );
    await first.close();
    // Handed back to the queue, not failed: no retry was spent on the deploy.
    const [back] = await q<{ status: string; current_phase: string }>(
      sql`select status, current_phase from investigations where id = ${id}`,
    );
    expect(back).toEqual({ status: 'pending', current_phase: 'requeued' });
    const second = await instance(portalEnv(portal));
    const done = await finished(second, id);
    expect(done).toMatchObject({ status: 'completed', records_processed: SAMPLE_CONTRACTS.length });
    expect(done.anomalies_detected).toBe(SAMPLE_PLANTED.length);
    const [row] = await q<{ run_count: number; instance_id: string }>(
      sql`select run_count, instance_id from investigations where id = ${id}`,
    );
    expect(row!.run_count).toBe(2);
    expect(row!.instance_id).not.toBe(first.infra.instanceId);
  });

  it('never runs one investigation twice across two instances', async () => {
    const a = await instance();
    const b = await instance();
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      ids.push(
        (await create(i % 2 ? a : b, { query: `par ${i}`, contracts: cleanDataset().slice(0, 50 + i) }))
          .investigation_id,
      );
    }
    for (const id of ids) expect((await finished(a, id)).status).toBe('completed');
    const rows = await q<{ run_count: number }>(
      sql`select run_count from investigations where id in ${sql.raw(`('${ids.join("','")}')`)}`,
    );
    expect(rows.map((r) => r.run_count)).toEqual(ids.map(() => 1));
  });
});

describe('progress stream', () => {
  it('follows a run live and replays after a cursor, in the chat framing', async () => {
    const portal = await slowPortal(20);
    const app = await instance({ ...portalEnv(portal), SSE_HEARTBEAT_MS: '200' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const { investigation_id: id } = await create(app, { query: PORTAL_QUERY });
    const live = await streamRequest(base, `${BASE}/${id}/stream`);
    expect(live.status).toBe(200);
    expect(live.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(live.raw.endsWith('\n')).toBe(true);
    parseSse(live.raw); // strict framing: every block is `id:` + one `data:` line, or a comment
    const types = live.events.map((e) => e.data.type);
    expect(types.at(-1)).toBe('completion');
    expect(types.filter((t) => t === 'completion')).toHaveLength(1);
    expect(types.filter((t) => t === 'progress').length).toBeGreaterThan(2);
    const anomalies = live.events.filter((e) => e.data.type === 'anomaly');
    expect(anomalies).toHaveLength(SAMPLE_PLANTED.length);
    expect(live.events.at(-1)!.data).toMatchObject({
      status: 'completed',
      anomalies_found: SAMPLE_PLANTED.length,
    });
    const progress = live.events.filter((e) => e.data.type === 'progress').map((e) => e.data.progress);
    expect(progress).toEqual([...progress].sort((x, y) => x - y));

    const cursor = anomalies[2]!.id;
    const expectedAfter = anomalies.slice(3).map((e) => e.data.finding.id);
    for (const opts of [{ headers: { 'last-event-id': cursor } }, { path: `?after=${cursor}` }]) {
      const replay = await streamRequest(base, `${BASE}/${id}/stream${opts.path ?? ''}`, {
        headers: opts.headers,
      });
      const ids = replay.events.filter((e) => e.data.type === 'anomaly').map((e) => e.data.finding.id);
      expect(ids).toEqual(expectedAfter);
      expect(replay.events.at(-1)!.data.type).toBe('completion');
    }
    const missing = await streamRequest(base, `${BASE}/${crypto.randomUUID()}/stream`);
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('INVESTIGATION_NOT_FOUND');
  });
});
