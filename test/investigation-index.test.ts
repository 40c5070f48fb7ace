// A run over more contracts than it keeps in memory (INVESTIGATION_CONTRACTS_KEPT): the findings are
// the same, the ones past the index name their contracts by id only, and the entity graph still
// holds every contract (fed page by page once the index is full).
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_CONTRACTS, SAMPLE_PLANTED } from '../src/modules/investigations/data/sample-contracts.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';
import { dbHelpers, until } from './support/frontend.js';
import { signHS256 } from './support/jwt.js';

const SECRET = 'investigation-index-secret-0123456789';
const INV = '/api/v1/investigations';
// The upload is read in pages of 1,000: the index fills with the first page and keeps none of the rest.
const KEPT = 1000;

let tdb: TestDb;
let app: FastifyInstance;
const redis = createTestRedis();

beforeAll(async () => {
  tdb = await createTestDb();
  app = await createTestApp({
    db: tdb.handle,
    redis,
    env: { JWT_SECRET: SECRET, INVESTIGATION_CONTRACTS_KEPT: String(KEPT) },
  });
});
afterAll(async () => {
  await app?.close();
  await redis?.close();
  await tdb?.drop();
});

const { q, count } = dbHelpers(() => tdb.handle);
const signature = (type: string, ids: string[]) => `${type} ${[...ids].sort().join(',')}`;

describe('a run over more contracts than it keeps', () => {
  it('finds the same anomalies; past the index, findings carry ids only; the graph has every contract', async () => {
    expect(SAMPLE_CONTRACTS.length).toBeGreaterThan(KEPT);
    const headers = { authorization: `Bearer ${await signHS256(SECRET, { sub: 'ana' })}` };
    const created = await app.inject({
      method: 'POST',
      url: `${INV}/`,
      headers,
      payload: { query: 'amostra', data_source: 'upload', contracts: SAMPLE_CONTRACTS },
    });
    expect(created.statusCode, created.body).toBe(202);
    const id = created.json().investigation_id as string;
    const done = await until(
      async () => (await app.inject({ url: `${INV}/${id}`, headers })).json(),
      (s) => ['completed', 'failed', 'cancelled'].includes(s.status),
    );
    expect(done.status).toBe('completed');

    // The detectors see every contract: the planted anomalies, as with an index that holds them all.
    const native = (await app.inject({ url: `${INV}/${id}/results`, headers })).json();
    expect(native.records_analyzed).toBe(SAMPLE_CONTRACTS.length);
    expect(
      native.findings
        .map((f: { type: string; contract_ids: string[] }) => signature(f.type, f.contract_ids))
        .sort(),
    ).toEqual(SAMPLE_PLANTED.map((p) => signature(p.type, [...p.contract_ids])).sort());

    // The results page: data for the contracts of the first page, the id alone for the others.
    const kept = new Set(SAMPLE_CONTRACTS.slice(0, KEPT).map((c) => c.id));
    const page = await app.inject({ url: `${INV}/public/results/${id}`, headers });
    expect(page.statusCode, page.body).toBe(200);
    const records = page
      .json()
      .results.flatMap(
        (a: { affected_records: Array<{ id: string; data: Record<string, unknown> }> }) => a.affected_records,
      );
    const withData = records.filter((r: { id: string }) => kept.has(r.id));
    const idOnly = records.filter((r: { id: string }) => !kept.has(r.id));
    expect(withData.length).toBeGreaterThan(0);
    expect(idOnly.length).toBeGreaterThan(0);
    for (const r of withData) {
      expect(r.data.id).toBe(r.id);
      expect(typeof r.data.fornecedor).toBe('string');
      expect(typeof r.data.valor_final).toBe('number');
    }
    for (const r of idOnly) expect(r.data).toEqual({ id: r.id });

    // The entity graph (written just after completion) links every agency to every supplier it paid.
    const pairs = new Set(SAMPLE_CONTRACTS.map((c) => `${c.orgao_codigo}|${c.cnpj_fornecedor}`)).size;
    await until(
      () => count('entity_relationships'),
      (n) => n === pairs,
    );
    const nodes = await q<{ kind: string; n: number }>(
      sql`select kind, count(*)::int as n from entity_nodes where last_investigation_id = ${id} group by kind order by kind`,
    );
    expect(nodes).toEqual([
      { kind: 'agency', n: new Set(SAMPLE_CONTRACTS.map((c) => c.orgao_codigo)).size },
      { kind: 'supplier', n: new Set(SAMPLE_CONTRACTS.map((c) => c.cnpj_fornecedor)).size },
    ]);
  });
});
