// Prometheus metrics (prom-client): one registry per app, the counters the generation lifecycle moves.
import { sql } from 'drizzle-orm';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type Db, rowsOf } from '../../db/client.js';

export type TurnOutcome = 'completed' | 'stopped' | 'failed' | 'interrupted';
export type ErrorSource = 'connection' | 'request' | 'readiness' | 'generation' | 'scrape';

/**
 * What the chat turn reports; the generation code calls these and never sees prom-client.
 * Passed in through buildApp(deps) → chat module → generation deps.
 */
export interface TurnMetrics {
  turnStarted(): void;
  turnEnded(outcome: TurnOutcome): void;
  /** Seconds from the turn's start event to its first content chunk. */
  firstChunk(seconds: number): void;
  /** `rows` checkpoints of one statement; failed ones also count as Postgres errors. */
  checkpoint(result: 'ok' | 'failed', rows: number): void;
  finalWriteRetry(): void;
  /** The final write gave up (the row keeps its last checkpoint); a Postgres error. */
  finalWriteFailed(): void;
}

/** What the reply writer reports (see generation/writer.ts). */
export interface ReplyWriterMetrics {
  /** One statement (or finalize-hook transaction) carrying `rows` replies' writes. */
  writerBatch(kind: 'checkpoint' | 'final', rows: number): void;
}

export interface Metrics {
  registry: Registry;
  turns: TurnMetrics;
  writer: ReplyWriterMetrics;
  /** Observes one finished HTTP request under its route pattern (never the raw URL). */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  postgresError(source: ErrorSource): void;
  redisError(source: ErrorSource): void;
  /** Sources read on every scrape (running generations, investigation jobs). */
  bind(sources: MetricSources): void;
}

export interface MetricSources {
  runningGenerations(): number;
  /** Final writes waiting in the reply writer's queue. */
  writerQueued?(): number;
  db: Db;
}

const PREFIX = 'cidadao_';
const TURN_OUTCOMES: TurnOutcome[] = ['completed', 'stopped', 'failed', 'interrupted'];
const JOB_STATES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  let sources: MetricSources | null = null;

  const requests = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route pattern; a stream counts until it closes.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  const started = new Counter({
    name: `${PREFIX}turns_started_total`,
    help: 'Chat turns whose generation started.',
    registers: [registry],
  });
  const ended = new Counter({
    name: `${PREFIX}turns_total`,
    help: 'Chat turns that ended, by outcome (completed, stopped, failed, interrupted).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  // Every outcome is exported from the start, so rate() and alerts see a 0 before the first event.
  for (const outcome of TURN_OUTCOMES) ended.inc({ outcome }, 0);
  const firstChunk = new Histogram({
    name: `${PREFIX}time_to_first_chunk_seconds`,
    help: 'Time from a turn start to its first content chunk.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
    registers: [registry],
  });
  const checkpoints = new Counter({
    name: `${PREFIX}checkpoints_total`,
    help: 'Checkpoint writes of growing replies, by result.',
    labelNames: ['result'],
    registers: [registry],
  });
  checkpoints.inc({ result: 'ok' }, 0);
  checkpoints.inc({ result: 'failed' }, 0);
  const finalRetries = new Counter({
    name: `${PREFIX}final_write_retries_total`,
    help: 'Retries of the final write of a reply.',
    registers: [registry],
  });
  const pgErrors = new Counter({
    name: `${PREFIX}postgres_errors_total`,
    help: 'Postgres errors seen, by where they surfaced.',
    labelNames: ['source'],
    registers: [registry],
  });
  const redisErrors = new Counter({
    name: `${PREFIX}redis_errors_total`,
    help: 'Redis errors seen, by where they surfaced.',
    labelNames: ['source'],
    registers: [registry],
  });
  pgErrors.inc({ source: 'request' }, 0);
  redisErrors.inc({ source: 'request' }, 0);
  const writerBatches = new Histogram({
    name: `${PREFIX}reply_write_batch_rows`,
    help: 'Replies per statement of the reply writer, by kind (checkpoint, final); the count is statements issued.',
    labelNames: ['kind'],
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500],
    registers: [registry],
  });
  new Gauge({
    name: `${PREFIX}reply_write_queue`,
    help: 'Final writes of replies waiting for the reply writer.',
    registers: [registry],
    collect() {
      this.set(sources?.writerQueued?.() ?? 0);
    },
  });
  new Gauge({
    name: `${PREFIX}generations_running`,
    help: 'Replies being generated on this instance.',
    registers: [registry],
    collect() {
      this.set(sources?.runningGenerations() ?? 0);
    },
  });
  new Gauge({
    name: `${PREFIX}investigation_jobs`,
    help: 'Investigations by state across all instances (pending = queued).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      if (!sources) return;
      try {
        const rows = rowsOf<{ status: string; n: string | number }>(
          await sources.db.execute(sql`select status, count(*) as n from investigations group by status`),
        );
        const counts = new Map(rows.map((r) => [r.status, Number(r.n)]));
        for (const state of JOB_STATES) this.set({ state }, counts.get(state) ?? 0);
      } catch {
        // A scrape must still answer while the database is away; the error counter says why.
        pgErrors.inc({ source: 'scrape' });
      }
    },
  });

  return {
    registry,
    turns: {
      turnStarted: () => started.inc(),
      turnEnded: (outcome) => ended.inc({ outcome }),
      firstChunk: (seconds) => firstChunk.observe(seconds),
      // Once per statement, by count: a labelled inc per row built its label key each time.
      checkpoint: (result, rows) => {
        checkpoints.inc({ result }, rows);
        if (result === 'failed') pgErrors.inc({ source: 'generation' }, rows);
      },
      finalWriteRetry: () => finalRetries.inc(),
      finalWriteFailed: () => pgErrors.inc({ source: 'generation' }),
    },
    writer: {
      writerBatch: (kind, rows) => writerBatches.observe({ kind }, rows),
    },
    observeRequest(method, route, status, seconds) {
      requests.observe({ method, route, status_code: String(status) }, seconds);
    },
    postgresError: (source) => pgErrors.inc({ source }),
    redisError: (source) => redisErrors.inc({ source }),
    bind(s) {
      sources = s;
    },
  };
}

/** Which backing service an error came from, if any; used to count errors that failed a request. */
export function errorBackend(err: unknown): 'postgres' | 'redis' | null {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const { name, message, code } = e as { name?: string; message?: string; code?: unknown };
    // ioredis: server replies, exhausted retries, a closed connection or a command timeout.
    if (name === 'ReplyError' || name === 'MaxRetriesPerRequestError') return 'redis';
    if (
      typeof message === 'string' &&
      /^(Connection is closed|Command timed out|Stream isn't writeable)/.test(message)
    )
      return 'redis';
    // node-postgres / PGlite / drizzle: a failed query, or a SQLSTATE code (5 characters, digits among them).
    if (name === 'DatabaseError' || name === 'DrizzleQueryError') return 'postgres';
    if (typeof code === 'string' && /^(?=.*\d)[0-9A-Z]{5}$/.test(code)) return 'postgres';
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}
