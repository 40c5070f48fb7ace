// The durable job runner (pg-boss on our database): once-only delivery, retries, dead letters, shutdown hand-back.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../src/db/client.js';
import {
  createJobRunner,
  JobAborted,
  type JobContext,
  type JobRunner,
  type JobRunnerOptions,
} from '../src/modules/investigations/queue.js';
import { createTestDb, silentLogger, type TestDb } from './support/backends.js';

interface Payload {
  key: string;
}

let tdb: TestDb;
const extraHandles: DbHandle[] = [];
beforeAll(async () => {
  tdb = await createTestDb();
});
afterAll(async () => {
  for (const h of extraHandles) await h.close();
  await tdb.drop();
});

/** A second connection to the same database, as another instance would have (PGlite: the same one). */
async function secondHandle(): Promise<DbHandle> {
  if (!tdb.url) return tdb.handle;
  const h = await createDb({ databaseUrl: tdb.url, poolMax: 4 });
  extraHandles.push(h);
  return h;
}

let queueSeq = 0;
function runner(
  handler: (job: JobContext<Payload>) => Promise<void>,
  over: Partial<JobRunnerOptions<Payload>> = {},
): JobRunner<Payload> {
  return createJobRunner<Payload>({
    db: tdb.handle,
    log: silentLogger(),
    queue: `test-q${queueSeq}`,
    handler,
    keyOf: (d) => d.key,
    pollingIntervalSeconds: 0.5,
    retryDelaySeconds: 1,
    retryLimit: 1,
    ...over,
  });
}

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves when the signal aborts, with its reason. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

describe('job runner', () => {
  it('runs every job exactly once across two instances on one database', async () => {
    queueSeq++;
    const runs = new Map<string, string[]>();
    const handler = (instance: string) => async (job: JobContext<Payload>) => {
      runs.set(job.data.key, [...(runs.get(job.data.key) ?? []), instance]);
      await new Promise((r) => setTimeout(r, 20));
    };
    const a = runner(handler('a'), { concurrency: 3 });
    const b = runner(handler('b'), { concurrency: 3, db: await secondHandle() });
    await a.start();
    await b.start();
    try {
      const keys = Array.from({ length: 24 }, (_, i) => `job-${i}`);
      await Promise.all(keys.map((key, i) => (i % 2 ? a : b).send({ key })));
      await until(() => keys.every((k) => runs.has(k)));
      // Let any duplicate delivery show up before counting.
      await new Promise((r) => setTimeout(r, 1500));
      for (const k of keys) expect(runs.get(k)).toHaveLength(1);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('retries a failed attempt, then dead-letters a job that keeps failing', async () => {
    queueSeq++;
    const attempts: Array<{ key: string; attempt: number; last: boolean }> = [];
    const dead: string[] = [];
    const r = runner(
      async (job) => {
        attempts.push({ key: job.data.key, attempt: job.attempt, last: job.lastAttempt });
        if (job.data.key === 'always' || job.attempt === 1) throw new Error('boom');
      },
      {
        onDeadLetter: async (d) => {
          dead.push(d.key);
        },
      },
    );
    await r.start();
    try {
      await r.send({ key: 'once' });
      await r.send({ key: 'always' });
      await until(() => dead.length === 1 && attempts.filter((a) => a.key === 'once').length === 2);
      expect(attempts.filter((a) => a.key === 'once')).toEqual([
        { key: 'once', attempt: 1, last: false },
        { key: 'once', attempt: 2, last: true },
      ]);
      expect(attempts.filter((a) => a.key === 'always').map((a) => a.attempt)).toEqual([1, 2]);
      expect(dead).toEqual(['always']);
    } finally {
      await r.stop();
    }
  });

  it('hands a running job back at shutdown, and another instance runs it to the end', async () => {
    queueSeq++;
    const events: string[] = [];
    const slow = (instance: string) => async (job: JobContext<Payload>) => {
      events.push(`${instance}:start:${job.attempt}`);
      for (let step = 0; step < 40; step++) {
        if (job.signal.aborted) {
          events.push(`${instance}:stopped:${(job.signal.reason as JobAborted).reason}`);
          throw job.signal.reason;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      events.push(`${instance}:done`);
    };
    const a = runner(slow('a'));
    await a.start();
    await a.send({ key: 'long' });
    await until(() => events.includes('a:start:1'));
    await a.stop();
    expect(events).toEqual(['a:start:1', 'a:stopped:shutdown']);

    const b = runner(slow('b'), { db: await secondHandle() });
    await b.start();
    try {
      await until(() => events.includes('b:done'));
      // A fresh job, not a retry: a deploy does not spend the retry budget.
      expect(events).toEqual(['a:start:1', 'a:stopped:shutdown', 'b:start:1', 'b:done']);
    } finally {
      await b.stop();
    }
  });

  it('at shutdown, hands back a job its poll fetched while stopping, before the database closes', async (ctx) => {
    if (!tdb.url) ctx.skip(); // holds a table lock from a connection of its own
    queueSeq++;
    const queue = `test-q${queueSeq}`;
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => void unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    // The instance that stops has a pool of its own, closed right after stop() as app.close() does.
    const own = await createDb({ databaseUrl: tdb.url!, poolMax: 4 });
    const starts: string[] = [];
    const sender = runner(async () => {}, { concurrency: 0 });
    const stopping = runner(async (job) => void starts.push(job.data.key), { db: own, concurrency: 1 });
    const locker = new pg.Client({ connectionString: tdb.url! });
    await locker.connect();
    try {
      await sender.start();
      await sender.send({ key: 'late' });
      // Its worker's first poll waits on this lock, so the job arrives while stop() runs.
      await locker.query('begin');
      await locker.query('lock table pgboss.job in exclusive mode');
      await stopping.start();
      const waiting = async () =>
        (
          await locker.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity
             where wait_event_type = 'Lock' and query ilike '%pgboss.job%' and pid <> pg_backend_pid()`,
          )
        ).rows[0]!.n;
      const deadline = Date.now() + 10_000;
      while ((await waiting()) === 0) {
        if (Date.now() > deadline) throw new Error('the poll never waited on the lock');
        await new Promise((r) => setTimeout(r, 20));
      }
      const stopped = stopping.stop();
      await locker.query('rollback');
      await stopped;
      await own.close();
      const states = async () =>
        (
          await locker.query<{ state: string }>(
            `select state from pgboss.job where name = $1 order by created_on`,
            [queue],
          )
        ).rows.map((r) => r.state);
      // The fetched job is handed back and completed before the close, or pg-boss's late query
      // meets the closed pool and rejects unhandled.
      let seen = await states();
      while (unhandled.length === 0 && !seen.includes('completed')) {
        if (Date.now() > deadline + 10_000) break;
        await new Promise((r) => setTimeout(r, 20));
        seen = await states();
      }
      expect(unhandled).toEqual([]);
      expect(starts).toEqual([]); // fetched while stopping: never started here
      // The fetched job completed as handed back, and a fresh one waits for the next instance.
      expect(seen).toEqual(['completed', 'created']);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await locker.end();
      await sender.stop();
    }
  });

  it('aborts a local run on request and on timeout', async () => {
    queueSeq++;
    const reasons = new Map<string, unknown>();
    const r = runner(
      async (job) => {
        reasons.set(job.data.key, 'started');
        reasons.set(job.data.key, await aborted(job.signal));
      },
      { timeoutSeconds: 1, concurrency: 2 },
    );
    await r.start();
    try {
      await r.send({ key: 'cancel-me' });
      await r.send({ key: 'time-me-out' });
      await until(() => reasons.get('cancel-me') === 'started');
      expect(r.abort('cancel-me', 'cancelled')).toBe(true);
      expect(r.abort('not-running-here', 'cancelled')).toBe(false);
      await until(() => reasons.get('time-me-out') instanceof JobAborted);
      expect((reasons.get('cancel-me') as JobAborted).reason).toBe('cancelled');
      expect((reasons.get('time-me-out') as JobAborted).reason).toBe('timeout');
    } finally {
      await r.stop();
    }
  });

  it('never starts a job cancelled before it was fetched', async () => {
    queueSeq++;
    const started: string[] = [];
    const r = runner(async (job) => {
      started.push(job.data.key);
    });
    // Enqueue while no worker runs, cancel, then start the workers.
    const producer = runner(async () => {}, { concurrency: 0 });
    await producer.start();
    const id = await producer.send({ key: 'never' });
    await producer.cancel(id);
    await producer.send({ key: 'marker' });
    await producer.stop();
    await r.start();
    try {
      await until(() => started.includes('marker'));
      await new Promise((res) => setTimeout(res, 700));
      expect(started).toEqual(['marker']);
    } finally {
      await r.stop();
    }
  });
});
