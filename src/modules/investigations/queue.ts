// Durable background jobs on pg-boss over the app's own database (node-postgres pool or embedded PGlite).
import type { PGlite } from '@electric-sql/pglite';
import { type SQL, sql } from 'drizzle-orm';
import type pg from 'pg';
import PgBoss from 'pg-boss';
import type { Logger } from 'pino';
import { type DbHandle, rowsOf, type Tx } from '../../db/client.js';

export type AbortReason = 'shutdown' | 'timeout' | 'cancelled';

/** The `signal.reason` of an aborted job: why the work must stop. */
export class JobAborted extends Error {
  override name = 'JobAborted';
  constructor(readonly reason: AbortReason) {
    super(`job aborted: ${reason}`);
  }
}

export interface JobContext<T> {
  jobId: string;
  data: T;
  /** Aborts on shutdown, on timeout and on abort(key); the handler checks it between steps. */
  signal: AbortSignal;
  /** 1 on the first try. */
  attempt: number;
  /** No retry follows if this attempt throws. */
  lastAttempt: boolean;
}

export interface JobRunnerOptions<T> {
  db: DbHandle;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
  /** Queue name; its dead-letter queue is `<queue>-dead`. */
  queue: string;
  /**
   * Resolve: done. Throw: retried (up to retryLimit), then dead-lettered; but a throw after a
   * shutdown abort hands the job back to the queue as new work.
   */
  handler: (job: JobContext<T>) => Promise<void>;
  /** Called once for a job that failed for good, including one whose instance died mid-run. */
  onDeadLetter?: (data: T) => Promise<void>;
  /** The key abort(key) matches, e.g. the investigation id. */
  keyOf: (data: T) => string;
  /** Jobs run at once on this instance. */
  concurrency?: number;
  /** A run is aborted after this long; the queue expires it (for a crashed instance) a little later. */
  timeoutSeconds?: number;
  retryLimit?: number;
  retryDelaySeconds?: number;
  pollingIntervalSeconds?: number;
  /**
   * A running job holds a lease it renews every third of this; when its instance dies, the queue
   * expires the job about this long after the last renewal and another instance retries it.
   */
  leaseSeconds?: number;
  /** How often expired jobs of crashed instances are collected (default: a third of the lease). */
  maintenanceIntervalSeconds?: number;
}

export interface JobRunner<T> {
  start(): Promise<void>;
  /**
   * Enqueues a job and returns its id. Given `tx`, the job commits or rolls back with that
   * transaction; call wake() after the commit so a local worker starts it without waiting to poll.
   */
  send(data: T, opts?: { id?: string; tx?: Tx }): Promise<string>;
  wake(): void;
  /** Cancels a job that has not started (it will never be fetched). */
  cancel(jobId: string): Promise<void>;
  /** Aborts the run of `key` if it runs on this instance; true if it did. */
  abort(key: string, reason: AbortReason): boolean;
  /** Stops fetching, aborts local runs (they go back to the queue), waits for them, stops pg-boss. */
  stop(): Promise<void>;
}

type ExecuteSql = (text: string, values?: unknown[]) => Promise<{ rows: unknown[] }>;

/**
 * pg-boss talks to our connection instead of opening its own pool. On PGlite (one session) its
 * multi-statement maintenance scripts carry their own BEGIN/COMMIT; running them inside PGlite's
 * transaction() keeps other queries out until they finish and rolls back a script that fails.
 */
export function pgBossExecutor(handle: DbHandle): ExecuteSql {
  const client = (handle.db as unknown as { $client: unknown }).$client;
  if (handle.kind === 'pglite') {
    const lite = client as PGlite;
    return async (text, values) => {
      if (values && values.length > 0) return lite.query(text, values);
      const results = await lite.transaction((tx) => tx.exec(text));
      return results[results.length - 1] ?? { rows: [] };
    };
  }
  const pool = client as pg.Pool;
  return (text, values) => pool.query(text, values);
}

/**
 * pg-boss 10 has no job heartbeat: an active job expires at `started_on + expire_in`, and that
 * expiry must stay long (it is also the in-process limit pg-boss puts on the handler, read when the
 * job is fetched). So the lease moves `started_on` instead: each renewal makes the job expire
 * `lease` seconds from now. A job whose instance died stops being renewed, expires, and is retried
 * by maintenance (retry count and dead letter as for any failure) on another instance.
 */
const RENEW_LEASE = `update pgboss.job
  set started_on = now() + make_interval(secs => $3::double precision) - expire_in
  where name = $1 and id = $2 and state = 'active'`;

const isShutdown = (signal: AbortSignal) =>
  signal.reason instanceof JobAborted && signal.reason.reason === 'shutdown';

/**
 * pg-boss inside one of our Drizzle transactions. Its SQL uses numbered parameters; Drizzle binds
 * each occurrence as its own parameter, which is equivalent (pg-boss's statements cast them).
 */
function txExecutor(tx: Tx): PgBoss.Db {
  return {
    async executeSql(text, values = []) {
      const parts: SQL[] = [];
      let last = 0;
      for (const m of text.matchAll(/\$(\d+)/g)) {
        parts.push(sql.raw(text.slice(last, m.index)), sql`${values[Number(m[1]) - 1] ?? null}`);
        last = m.index + m[0].length;
      }
      parts.push(sql.raw(text.slice(last)));
      return { rows: rowsOf(await tx.execute(sql.join(parts))) };
    },
  };
}

export function createJobRunner<T extends object>(opts: JobRunnerOptions<T>): JobRunner<T> {
  const { log, queue } = opts;
  const deadQueue = `${queue}-dead`;
  const timeoutSeconds = opts.timeoutSeconds ?? 600;
  const leaseSeconds = opts.leaseSeconds ?? 30;
  const execute = pgBossExecutor(opts.db);
  // Queries still in flight when we stop (pg-boss completes jobs without awaiting) are awaited
  // before the database closes under them.
  const inflight = new Set<Promise<unknown>>();
  let stopped = false;
  const boss = new PgBoss({
    db: {
      executeSql: (text, values) => {
        // Once stopped, the database may be closed: pg-boss neither awaits nor catches some of its
        // queries (a job's completion), so one sent there would reject unhandled. It gets no rows;
        // a job it concerned stays active and is retried when its lease expires, as after a crash.
        if (stopped) return Promise.resolve({ rows: [] });
        const p = execute(text, values);
        inflight.add(p);
        void p.then(
          () => inflight.delete(p),
          () => inflight.delete(p),
        );
        return p;
      },
    },
    schedule: false,
    supervise: true,
    // Every instance asks, one at a time wins (pg-boss keeps the last run's time in its table).
    maintenanceIntervalSeconds: opts.maintenanceIntervalSeconds ?? Math.max(1, Math.round(leaseSeconds / 3)),
  });
  boss.on('error', (err: Error) => log.error({ err: err.message, queue }, 'job queue error'));

  const running = new Map<string, AbortController>();
  const settled = new Set<Promise<void>>();
  const workerIds: string[] = [];
  let stopping = false;

  async function runJob(job: PgBoss.JobWithMetadata<T>, controller: AbortController): Promise<void> {
    const timer = setTimeout(() => controller.abort(new JobAborted('timeout')), timeoutSeconds * 1000);
    // Fetched while stopping: it goes straight back to the queue without starting.
    let handBack = stopping;
    try {
      if (!handBack) {
        await opts.handler({
          jobId: job.id,
          data: job.data,
          signal: controller.signal,
          attempt: job.retryCount + 1,
          lastAttempt: job.retryCount >= job.retryLimit,
        });
      }
    } catch (err) {
      // A handler that stops because of the shutdown throws; one that finished anyway is done.
      if (!isShutdown(controller.signal)) throw err;
      handBack = true;
    } finally {
      clearTimeout(timer);
    }
    if (handBack) {
      // A deploy is not a failure: hand the job back as new work instead of spending a retry.
      const next = await boss.send(queue, job.data);
      log.info({ queue, jobId: job.id, next }, 'job handed back to the queue at shutdown');
    }
  }

  /** Renews the job's lease now and every third of the lease until the returned stop is called. */
  function holdLease(jobId: string): () => void {
    const renew = () =>
      execute(RENEW_LEASE, [queue, jobId, leaseSeconds]).catch((err: Error) =>
        log.warn({ err: err.message, queue, jobId }, 'job lease not renewed'),
      );
    void renew();
    const timer = setInterval(renew, (leaseSeconds * 1000) / 3);
    return () => clearInterval(timer);
  }

  async function runOne(job: PgBoss.JobWithMetadata<T>): Promise<void> {
    const key = opts.keyOf(job.data);
    const controller = new AbortController();
    running.set(key, controller);
    const releaseLease = holdLease(job.id);
    const run = runJob(job, controller);
    const tracked = run.then(
      () => {},
      () => {},
    );
    settled.add(tracked);
    try {
      await run;
    } finally {
      releaseLease();
      running.delete(key);
      settled.delete(tracked);
    }
  }

  return {
    async start() {
      await boss.start();
      await boss.createQueue(deadQueue);
      const queueOptions = {
        name: queue,
        retryLimit: opts.retryLimit ?? 2,
        retryDelay: opts.retryDelaySeconds ?? 5,
        retryBackoff: true,
        // Expiry reclaims the job of an instance that died; our own timer fires first.
        expireInSeconds: timeoutSeconds + 30,
        deadLetter: deadQueue,
      };
      await boss.createQueue(queue, queueOptions);
      // createQueue keeps an existing queue's options; this applies the current ones.
      await boss.updateQueue(queue, queueOptions);
      const pollingIntervalSeconds = opts.pollingIntervalSeconds ?? 1;
      for (let i = 0; i < (opts.concurrency ?? 2); i++) {
        workerIds.push(
          await boss.work<T>(
            queue,
            { includeMetadata: true, batchSize: 1, pollingIntervalSeconds },
            async ([job]) => {
              if (job) await runOne(job);
            },
          ),
        );
      }
      const onDeadLetter = opts.onDeadLetter;
      if (onDeadLetter) {
        await boss.work<T>(deadQueue, { pollingIntervalSeconds }, async (jobs) => {
          for (const job of jobs) await onDeadLetter(job.data);
        });
      }
    },

    async send(data, sendOpts = {}) {
      const id = await boss.send(queue, data, {
        ...(sendOpts.id ? { id: sendOpts.id } : {}),
        ...(sendOpts.tx ? { db: txExecutor(sendOpts.tx) } : {}),
      });
      if (!id) throw new Error(`job queue ${queue} refused a job`);
      if (!sendOpts.tx) this.wake();
      return id;
    },

    wake() {
      for (const workerId of workerIds) boss.notifyWorker(workerId);
    },

    async cancel(jobId) {
      await boss.cancel(queue, jobId);
    },

    abort(key, reason) {
      const controller = running.get(key);
      if (!controller) return false;
      controller.abort(new JobAborted(reason));
      return true;
    },

    async stop() {
      if (stopping) return;
      stopping = true;
      await boss.offWork(queue);
      for (const controller of running.values()) controller.abort(new JobAborted('shutdown'));
      await Promise.allSettled([...settled]);
      await boss.stop({ graceful: true, wait: true, timeout: 1000 });
      // pg-boss's offWork does not wait for a poll in flight: jobs it fetched now arrive after the
      // stop, go to runOne (which hands them back, since we are stopping) and pg-boss completes
      // them. Waits until that chain is quiet (each hop is a query or a run we track), then closes.
      while (inflight.size > 0 || settled.size > 0) {
        await Promise.allSettled([...inflight, ...settled]);
        await new Promise((r) => setImmediate(r));
      }
      stopped = true;
    },
  };
}
