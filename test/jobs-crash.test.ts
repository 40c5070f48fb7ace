// A job whose instance dies (kill -9) mid-run is finished by another instance within its lease, not ten minutes later.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { SAMPLE_CONTRACTS, SAMPLE_PLANTED } from '../src/modules/investigations/data/sample-contracts.js';
import { backends, createTestDb, type TestDb } from './support/backends.js';
import { type FakePortal, startFakePortal, toPortalRecord } from './support/fake-portal.js';
import { ensureBuilt, type ServerProcess, startServer } from './support/server-process.js';

const API_KEY = 'portal-crash-key';
const LEASE_S = 3;

describe.skipIf(!backends().databaseUrl)('a job on an instance that died', () => {
  let tdb: TestDb;
  let portal: FakePortal;
  const servers: ServerProcess[] = [];
  beforeAll(async () => {
    ensureBuilt();
    tdb = await createTestDb();
    // The real /contratos needs an agency and a date window: every contract is listed under one
    // superior agency (20000), and the investigation below names it and a window.
    portal = await startFakePortal({
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
    // Every page is held a while, so the run is still going when its instance is killed.
    portal.enqueue(...Array.from({ length: 400 }, () => ({ delayMs: 250 })));
  }, 300_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    await portal?.close();
    await tdb?.drop();
  });

  const env = () => ({
    DATABASE_URL: tdb.url!,
    DATABASE_POOL_MAX: '5',
    MIGRATE_ON_BOOT: 'false',
    TRANSPARENCY_API_KEY: API_KEY,
    TRANSPARENCY_API_BASE_URL: portal.baseUrl,
    // The production default is 30 s; the window is configuration, not a test-only path.
    JOB_LEASE_SECONDS: String(LEASE_S),
  });
  const row = async (id: string) =>
    rowsOf<{ status: string; run_count: number; instance_id: string; records_processed: number }>(
      await tdb.handle.db.execute(
        sql`select status, run_count, instance_id, records_processed from investigations where id = ${id}`,
      ),
    )[0]!;
  async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`not met in ${timeoutMs} ms: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('another instance completes it within about a lease and a retry delay', async () => {
    const a = await startServer(env());
    servers.push(a);
    await a.ready(240_000);
    const res = await fetch(`${a.base}/api/v1/investigations/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'contratos do órgão 20000 de 2024 a 2025' }),
    });
    expect(res.status).toBe(202);
    const { investigation_id: id } = (await res.json()) as { investigation_id: string };
    const running = await until(
      () => row(id),
      (r) => r.status === 'running' && r.records_processed > 0,
      60_000,
    );

    const b = await startServer(env());
    servers.push(b);
    await b.ready(240_000);
    a.child.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();

    // Resumed: another run claimed it (the run count moved on) on a live instance.
    const resumed = await until(
      () => row(id),
      (r) => r.run_count > running.run_count,
      60_000,
    );
    const resumedS = (Date.now() - killedAt) / 1000;
    process.stderr.write(`[jobs-crash] resumed on another instance ${resumedS.toFixed(1)} s after kill -9\n`);
    // Lease + maintenance tick + retry delay (5–10 s with backoff) + a poll: far below the old ~10.5 min.
    expect(resumedS).toBeLessThan(LEASE_S + 20);
    expect(resumed.instance_id).not.toBe(running.instance_id);
    const done = await until(
      () => row(id),
      (r) => r.status === 'completed',
      90_000,
    );
    expect(done.run_count).toBe(running.run_count + 1);
    const final = (await (await fetch(`${b.base}/api/v1/investigations/${id}`)).json()) as {
      status: string;
      records_processed: number;
      anomalies_detected: number;
    };
    expect(final).toMatchObject({ status: 'completed', records_processed: SAMPLE_CONTRACTS.length });
    expect(final.anomalies_detected).toBe(SAMPLE_PLANTED.length);
  }, 500_000);
});
