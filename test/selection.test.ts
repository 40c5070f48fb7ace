// The query selects: investigations analyse what the question names, chat answers with suspects, the Portal is asked right.
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { SAMPLE_CONTRACTS } from '../src/modules/investigations/data/sample-contracts.js';
import { createDetectorRun } from '../src/modules/investigations/detectors/index.js';
import { ANOMALY_TYPES, type Contract } from '../src/modules/investigations/types.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { type FakePortal, startFakePortal, toPortalRecord } from './support/fake-portal.js';

const BASE = '/api/v1/investigations';
const API_KEY = 'selection-portal-key';
let tdb: TestDb;
const redis = createTestRedis();
let app: FastifyInstance;
let portal: FakePortal;
let portalApp: FastifyInstance;

const SAUDE = SAMPLE_CONTRACTS.filter((c) => c.orgao === 'Ministério da Saúde');
// An agency the built-in table does not know: its code must come from the Portal's listing.
const UFPE: Contract[] = Array.from({ length: 20 }, (_, i) => ({
  ...SAMPLE_CONTRACTS[i]!,
  id: String(900_000 + i),
  orgao: 'Universidade Federal de Pernambuco',
  orgao_codigo: '26242',
  data_assinatura: `2024-0${1 + (i % 9)}-1${i % 10}`,
}));

beforeAll(async () => {
  tdb = await createTestDb();
  app = await createTestApp({ db: tdb.handle, redis });
  portal = await startFakePortal({
    apiKey: API_KEY,
    records: [...UFPE, ...SAUDE.slice(0, 5)].map((c) => toPortalRecord(c)),
  });
  portalApp = await createTestApp({
    db: tdb.handle,
    redis,
    env: { TRANSPARENCY_API_KEY: API_KEY, TRANSPARENCY_API_BASE_URL: portal.baseUrl },
  });
});
afterAll(async () => {
  await portalApp.close();
  await app.close();
  await portal.close();
  await redis?.close();
  await tdb.drop();
});

const stored = async () =>
  rowsOf<{ n: number }>(await tdb.handle.db.execute(sql`select count(*)::int as n from investigations`))[0]!
    .n;

async function finished(a: FastifyInstance, id: string) {
  const deadline = Date.now() + 25_000;
  for (;;) {
    const s = (await a.inject({ url: `${BASE}/${id}` })).json();
    if (['completed', 'failed', 'cancelled'].includes(s.status)) return s;
    if (Date.now() > deadline) throw new Error(`not finished: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('an investigation analyses what its query selects', () => {
  it('the README example analyses only the Ministério da Saúde and says how many', async () => {
    const r = await app.inject({
      method: 'POST',
      url: `${BASE}/`,
      payload: { query: 'contratos do Ministério da Saúde', data_source: 'contracts' },
    });
    expect(r.statusCode, r.body).toBe(202);
    expect(r.json().selection).toBe('contratos do órgão Ministério da Saúde');
    const id = r.json().investigation_id;
    expect((await finished(app, id)).status).toBe('completed');
    const results = (await app.inject({ url: `${BASE}/${id}/results` })).json();
    expect(results.records_analyzed).toBe(SAUDE.length);
    expect(results.summary).toMatch(
      new RegExp(`^Seleção: contratos do órgão Ministério da Saúde \\(${SAUDE.length} contratos\\)\\. `),
    );
    const saudeIds = new Set(SAUDE.map((c) => c.id));
    expect(results.findings.length).toBeGreaterThan(0);
    for (const f of results.findings) for (const cid of f.contract_ids) expect(saudeIds.has(cid)).toBe(true);
  });

  it('query and filters both hold', async () => {
    const r = await app.inject({
      method: 'POST',
      url: `${BASE}/`,
      payload: {
        query: 'contratos da saúde',
        filters: { data_inicio: '2025-01-01', modalidade: 'Pregão' },
      },
    });
    const id = r.json().investigation_id;
    await finished(app, id);
    const results = (await app.inject({ url: `${BASE}/${id}/results` })).json();
    const expected = SAUDE.filter((c) => c.data_assinatura >= '2025-01-01' && c.modalidade === 'Pregão');
    expect(results.records_analyzed).toBe(expected.length);
    expect(expected.length).toBeLessThan(SAUDE.length);
  });

  it('answers 422 for the datasets that have no source yet, naming what is supported, and writes nothing', async () => {
    const before = await stored();
    for (const data_source of ['expenses', 'agreements', 'biddings', 'servants']) {
      const r = await app.inject({ method: 'POST', url: `${BASE}/`, payload: { query: 'x', data_source } });
      expect(r.statusCode).toBe(422);
      expect(r.json().error.message).toContain(`data_source "${data_source}" is not supported yet`);
      expect(r.json().error.message).toContain('supported today: contracts, upload');
    }
    expect(await stored()).toBe(before);
  });
});

describe('the Portal is asked the way it requires', () => {
  it('rejects, like the real API, a /contratos request without codigoOrgao or a date window', async () => {
    const get = (q: string) =>
      fetch(`${portal.baseUrl}/contratos?${q}`, { headers: { 'chave-api-dados': API_KEY } });
    const noAgency = await get('pagina=1&dataInicial=01/01/2024&dataFinal=31/12/2024');
    expect(noAgency.status).toBe(400);
    expect(JSON.stringify(await noAgency.json())).toContain('codigoOrgao');
    const noWindow = await get('pagina=1&codigoOrgao=36000');
    expect(noWindow.status).toBe(400);
  });

  it('resolves an agency named in the query to its code through the listing, once', async () => {
    portal.requests.length = 0;
    const r = await portalApp.inject({
      method: 'POST',
      url: `${BASE}/`,
      payload: { query: 'contratos da Universidade Federal de Pernambuco em 2024' },
    });
    expect(r.statusCode, r.body).toBe(202);
    expect(r.json().sample_data).toBe(false);
    const id = r.json().investigation_id;
    const s = await finished(portalApp, id);
    expect(s.status, JSON.stringify(s)).toBe('completed');
    expect(s.records_processed).toBe(UFPE.length);
    const lookups = portal.requests.filter((q) => q.path.endsWith('/orgaos-siafi'));
    expect(lookups).toHaveLength(1);
    expect(lookups[0]!.query.descricao).toBe('Universidade Federal de Pernambuco');
    const asked = portal.requests.filter((q) => q.path.endsWith('/contratos'));
    expect(asked.length).toBeGreaterThan(0);
    for (const q of asked) {
      expect(q.query).toMatchObject({
        codigoOrgao: '26242',
        dataInicial: '01/01/2024',
        dataFinal: '31/12/2024',
      });
    }
    // A second investigation of the same agency uses the cached code.
    const again = await portalApp.inject({
      method: 'POST',
      url: `${BASE}/`,
      payload: { query: 'contratos da Universidade Federal de Pernambuco em 2024' },
    });
    await finished(portalApp, again.json().investigation_id);
    expect(portal.requests.filter((q) => q.path.endsWith('/orgaos-siafi'))).toHaveLength(1);
  });

  it('says clearly when the query names no agency (422, nothing written) or one the Portal does not list', async () => {
    const before = await stored();
    const r = await portalApp.inject({
      method: 'POST',
      url: `${BASE}/`,
      payload: { query: 'merenda escolar' },
    });
    expect(r.statusCode).toBe(422);
    expect(r.json().error.message).toMatch(/só lista contratos por órgão/);
    expect(await stored()).toBe(before);

    const unknown = await portalApp.inject({
      method: 'POST',
      url: `${BASE}/`,
      payload: { query: 'contratos da Universidade Federal de Atlântida' },
    });
    const s = await finished(portalApp, unknown.json().investigation_id);
    expect(s.status).toBe('failed');
    expect(s.error).toBe(
      'O Portal da Transparência não lista um órgão chamado "Universidade Federal de Atlântida".',
    );
  });
});

describe('chat answers that point at suspects', () => {
  const ask = async (message: string) => {
    const r = await app.inject({ method: 'POST', url: '/api/v1/chat/message', payload: { message } });
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as { message: string; intent: string; metadata: Record<string, unknown> };
  };

  it('"quais contratos da saúde são suspeitos?" names findings the detectors produce on the Saúde contracts', async () => {
    const run = createDetectorRun(ANOMALY_TYPES);
    run.add(SAUDE);
    const findings = run.steps().flatMap((s) => s.run());
    expect(findings.length).toBeGreaterThan(0);
    const worst = [...findings].sort((a, b) => b.severity - a.severity)[0]!;
    const contract = SAUDE.find((c) => c.id === worst.contract_ids[0])!;

    const answer = await ask('quais contratos da saúde são suspeitos?');
    expect(answer.intent).toBe('investigate');
    expect(answer.message).toContain(
      `Encontrei ${SAUDE.length} contratos (contratos do órgão Ministério da Saúde)`,
    );
    expect(answer.message).toContain(worst.title);
    expect(answer.message).toContain(`contrato nº ${contract.numero}`);
    expect(answer.message).toMatch(/Por quê: /);
    expect(answer.message).toMatch(/Severidade (alta|média|baixa)/);
    const link = /\/api\/v1\/investigations\/([0-9a-f-]{36})/.exec(answer.message);
    expect(link).not.toBeNull();
    expect((await app.inject({ url: `${BASE}/${link![1]}` })).statusCode).toBe(200);
  });

  it('counts every match, not a cap, and "Educação" selects the ministry, not suppliers', async () => {
    const mec = SAMPLE_CONTRACTS.filter((c) => c.orgao === 'Ministério da Educação');
    const answer = await ask('mostre os contratos da Educação');
    expect(answer.message).toContain(`Encontrei ${mec.length} contratos`);
    const all = await ask('liste os contratos de 2024 e 2025');
    expect(all.message).toContain(`Encontrei ${SAMPLE_CONTRACTS.length.toLocaleString('pt-BR')} contratos`);
  });

  it('explains a concept instead of searching', async () => {
    const answer = await ask('o que é fracionamento de despesa?');
    expect(answer.intent).toBe('explain');
    expect(answer.message).toMatch(/Fracionamento de despesa/);
    expect(answer.message).toMatch(/limite de dispensa/);
    expect(answer.message).not.toMatch(/Encontrei/);
  });
});
