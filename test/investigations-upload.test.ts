// An upload's two sources: the parsed contracts the accepting instance holds, and the stored copy any
// instance reads back (a run elsewhere, or after a restart). They must select the same contracts.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_CONTRACTS } from '../src/modules/investigations/data/sample-contracts.js';
import {
  createInvestigationRepo,
  INPUT_CHUNK_SIZE,
} from '../src/modules/investigations/investigations.repo.js';
import type { ContractFilters, ContractSource } from '../src/modules/investigations/sources/index.js';
import {
  createHeldUploadSource,
  createStoredUploadSource,
} from '../src/modules/investigations/sources/upload.js';
import type { Contract } from '../src/modules/investigations/types.js';
import { createTestDb, type TestDb } from './support/backends.js';

let tdb: TestDb;
beforeAll(async () => {
  tdb = await createTestDb();
});
afterAll(async () => {
  await tdb?.drop();
});

async function drain(source: ContractSource, filters: ContractFilters): Promise<Contract[][]> {
  const pages: Contract[][] = [];
  for await (const page of source.pages(filters, new AbortController().signal)) pages.push(page);
  return pages;
}

describe('upload sources', () => {
  it('the held contracts and the stored chunks give the same pages for the same selection', async () => {
    // More than two stored chunks, ids unique.
    const contracts = [0, 1, 2, 3].flatMap((round) =>
      SAMPLE_CONTRACTS.map((c) => ({ ...c, id: `${c.id}-${round}` })),
    );
    expect(contracts.length).toBeGreaterThan(INPUT_CHUNK_SIZE + 1);
    const repo = createInvestigationRepo(tdb.handle.db);
    const id = randomUUID();
    await tdb.handle.db.transaction((tx) =>
      repo.insert(
        tx,
        { id, query: 'u', dataSource: 'upload', sourceKind: 'upload', anomalyTypes: ['price_outlier'] },
        contracts,
      ),
    );
    const stored = createStoredUploadSource((chunk) => repo.inputChunk(id, chunk));
    const held = createHeldUploadSource(contracts);
    const health = contracts.filter((c) => c.orgao_codigo === '36000').length;
    expect(health).toBeGreaterThan(0);
    for (const filters of [
      {},
      { max_records: 5001 },
      { orgao_codigo: '36000' },
      { orgao_codigo: '36000', max_records: Math.ceil(health / 2) },
    ] as ContractFilters[]) {
      const fromStore = await drain(stored, filters);
      expect(fromStore).toEqual(await drain(held, filters));
      const expected = filters.orgao_codigo ? health : contracts.length;
      expect(fromStore.flat()).toHaveLength(Math.min(expected, filters.max_records ?? Infinity));
    }
    expect(await repo.inputChunk(id, Math.ceil(contracts.length / INPUT_CHUNK_SIZE))).toBeNull();
  });

  it("a stop ends an upload's pages between one page and the next", async () => {
    const stop = new AbortController();
    const source = createHeldUploadSource(SAMPLE_CONTRACTS);
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const page of source.pages({}, stop.signal)) {
          seen.push(page.length);
          stop.abort(new Error('stopped'));
        }
      })(),
    ).rejects.toThrow('stopped');
    expect(seen).toEqual([1000]);
  });
});
