// The investigation repo's rows read the same on node-postgres and PGlite: Dates, parsed jsonb, text
// arrays, numbers; and its guarded writes (run ownership, forward-only progress, one-statement findings).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInvestigationRepo } from '../src/modules/investigations/investigations.repo.js';
import type { Finding } from '../src/modules/investigations/types.js';
import { createTestDb, type TestDb } from './support/backends.js';

let tdb: TestDb;
beforeAll(async () => {
  tdb = await createTestDb();
});
afterAll(async () => {
  await tdb?.drop();
});

const finding = (n: number): Finding => ({
  id: `price_outlier:${n}`,
  type: 'price_outlier',
  severity: 0.25 * n,
  confidence: 0.5,
  title: `T${n}`,
  explanation: 'E',
  contract_ids: ['c1', 'with "quote", comma {brace}'],
  evidence: { n, nested: { values: [1, null, 'x'] } },
});

async function created(userId: string | null = null) {
  const repo = createInvestigationRepo(tdb.handle.db);
  const id = randomUUID();
  await tdb.handle.db.transaction((tx) =>
    repo.insert(
      tx,
      {
        id,
        userId,
        query: 'q',
        dataSource: 'contracts',
        sourceKind: 'sample',
        filters: { orgao_codigo: '36000', nested: [1, { a: 'b' }] },
        anomalyTypes: ['price_outlier', 'a"b,c{}'],
      },
      null,
    ),
  );
  return { repo, id };
}

describe('investigation repo', () => {
  it('reads a new row with its defaults, Dates, parsed jsonb and text arrays', async () => {
    const userId = `u-${randomUUID()}`;
    const { repo, id } = await created(userId);
    const row = (await repo.get(id))!;
    expect(row).toMatchObject({
      id,
      userId,
      sessionId: null,
      query: 'q',
      status: 'pending',
      currentPhase: 'queued',
      progress: 0,
      progressSeq: 0,
      runCount: 0,
      sampleData: false,
      recordsExpected: null,
      startedAt: null,
      filters: { orgao_codigo: '36000', nested: [1, { a: 'b' }] },
      anomalyTypes: ['price_outlier', 'a"b,c{}'],
    });
    expect(row.createdAt).toBeInstanceOf(Date);
    expect(row.updatedAt).toBeInstanceOf(Date);
    expect(Math.abs(row.createdAt.getTime() - Date.now())).toBeLessThan(60_000);
    expect(await repo.listByUser(userId, 10)).toEqual([row]);
    expect(await repo.get(randomUUID())).toBeNull();
    expect(await repo.statusOf(id)).toEqual({ status: 'pending', runCount: 0 });
  });

  it('writes only while the run is ours, and progress never goes back', async () => {
    const { repo, id } = await created();
    const claimed = (await repo.claimRun(id, 'instance-a'))!;
    expect(claimed).toMatchObject({ status: 'running', runCount: 1, instanceId: 'instance-a' });
    expect(claimed.startedAt).toBeInstanceOf(Date);
    expect(await repo.progress(id, 2, { progress: 0.9 })).toBe(false);
    expect(await repo.progress(id, 1, { progress: 0.5, currentPhase: 'x', recordsProcessed: 7 })).toBe(true);
    expect(await repo.progress(id, 1, { progress: 0.2 })).toBe(true);
    expect(await repo.progress(id, 1, { recordsProcessed: 9 })).toBe(true);
    expect(await repo.get(id)).toMatchObject({ progress: 0.5, currentPhase: 'x', recordsProcessed: 9 });

    expect(await repo.addFindings(id, 1, 1, [finding(1), finding(2)], { progress: 0.6 })).toBe(true);
    // A finding already stored is kept; the new one lands under its own seq.
    expect(await repo.addFindings(id, 1, 3, [finding(2), finding(3)], {})).toBe(true);
    expect(await repo.addFindings(id, 2, 5, [finding(4)], {})).toBe(false);
    const findings = await repo.findingsAfter(id, 0, 10);
    expect(findings.map((f) => [f.seq, f.findingId])).toEqual([
      [1, 'price_outlier:1'],
      [2, 'price_outlier:2'],
      [4, 'price_outlier:3'],
    ]);
    expect(findings[0]).toMatchObject({
      investigationId: id,
      severity: 0.25,
      confidence: 0.5,
      contractIds: ['c1', 'with "quote", comma {brace}'],
      evidence: { n: 1, nested: { values: [1, null, 'x'] } },
    });
    expect(findings[0]!.createdAt).toBeInstanceOf(Date);
    expect((await repo.findingsAfter(id, 1, 1)).map((f) => f.seq)).toEqual([2]);

    expect(
      await repo.complete(id, 2, {
        recordsProcessed: 5,
        anomaliesDetected: 3,
        confidence: 0.75,
        summary: 's',
      }),
    ).toBe(false);
    expect(
      await repo.complete(id, 1, {
        recordsProcessed: 5,
        anomaliesDetected: 3,
        confidence: 0.75,
        summary: 's',
      }),
    ).toBe(true);
    const done = (await repo.get(id))!;
    expect(done).toMatchObject({ status: 'completed', progress: 1, confidence: 0.75, anomaliesDetected: 3 });
    expect(done.completedAt).toBeInstanceOf(Date);
    expect(Number.isInteger(done.processingTimeMs)).toBe(true);
    expect(await repo.cancel(id)).toBeNull();
    expect(await repo.fail(id, null, 'late')).toBe(false);
  });

  it('a new run clears the findings of the last one; a cancel returns the ended row', async () => {
    const { repo, id } = await created();
    await repo.claimRun(id, 'a');
    await repo.addFindings(id, 1, 1, [finding(1)], {});
    await repo.requeue(id, 1, 'requeued', 'boom');
    expect(await repo.get(id)).toMatchObject({ status: 'pending', currentPhase: 'requeued', error: 'boom' });
    expect((await repo.claimRun(id, 'b'))!).toMatchObject({ runCount: 2, error: null, anomaliesDetected: 0 });
    expect(await repo.findingsAfter(id, 0, 10)).toEqual([]);
    const cancelled = (await repo.cancel(id))!;
    expect(cancelled).toMatchObject({ id, status: 'cancelled', currentPhase: 'cancelled' });
    expect(cancelled.completedAt).toBeInstanceOf(Date);
    expect(await repo.progress(id, 2, { progress: 1 })).toBe(false);
  });
});
