// Investigation queries: the API's reads scoped by caller, and the runner's writes guarded by run number.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { type SQL, sql } from 'drizzle-orm';
import { type Db, rowsOf, type Tx } from '../../db/client.js';
import { executeNamed } from '../../db/prepared.js';
import type {
  InvestigationStatus,
  investigationFindings,
  investigations,
} from '../../db/schema/investigations.js';
import type { Contract, Finding } from './types.js';

const deflate = promisify(zlib.deflate);
const inflate = promisify(zlib.inflate);

export type InvestigationRow = typeof investigations.$inferSelect;
export type FindingRow = typeof investigationFindings.$inferSelect;

/** What creating an investigation sets; every other column starts at its default. */
export interface NewInvestigation {
  id: string;
  userId?: string | null;
  sessionId?: string | null;
  query?: string;
  dataSource: InvestigationRow['dataSource'];
  sourceKind: InvestigationRow['sourceKind'];
  sampleData?: boolean;
  filters?: Record<string, unknown>;
  anomalyTypes: readonly string[];
  recordsExpected?: number | null;
  jobId?: string | null;
}

export const ACTIVE_STATUSES: InvestigationStatus[] = ['pending', 'running'];
export const isActive = (status: InvestigationStatus) => ACTIVE_STATUSES.includes(status);

/** What a runner may change while it owns the run. */
export interface RunPatch {
  currentPhase?: string;
  progress?: number;
  recordsProcessed?: number;
}

/** The terminal write of a successful run. */
export interface RunResult {
  recordsProcessed: number;
  anomaliesDetected: number;
  confidence: number | null;
  summary: string;
}

// Upload chunks: big enough that 100k contracts are a handful of rows, small enough to read one at a time.
export const INPUT_CHUNK_SIZE = 5000;

// Aliased to the schema's property names, so a row reads the same as InvestigationRow everywhere.
const INVESTIGATION_COLS = sql.raw(
  `id, user_id as "userId", session_id as "sessionId", query, data_source as "dataSource",
  source_kind as "sourceKind", sample_data as "sampleData", filters, anomaly_types as "anomalyTypes",
  status, current_phase as "currentPhase", progress, progress_seq as "progressSeq",
  records_expected as "recordsExpected", records_processed as "recordsProcessed",
  anomalies_detected as "anomaliesDetected", confidence, summary, error, job_id as "jobId",
  run_count as "runCount", instance_id as "instanceId", started_at as "startedAt",
  completed_at as "completedAt", processing_time_ms as "processingTimeMs", created_at as "createdAt",
  updated_at as "updatedAt"`,
);
const FINDING_COLS = sql.raw(
  `investigation_id as "investigationId", seq, finding_id as "findingId", type, severity, confidence,
  title, explanation, contract_ids as "contractIds", evidence, created_at as "createdAt"`,
);

// Timestamps arrive as text through `db.execute` (Drizzle's drivers turn the Date parser off) and as
// Date through a named statement on node-postgres: callers always get a Date.
type Stamped<T, K extends keyof T> = Omit<T, K> & { [P in K]: T[P] | string };
type RawInvestigation = Stamped<InvestigationRow, 'startedAt' | 'completedAt' | 'createdAt' | 'updatedAt'>;
type RawFinding = Stamped<FindingRow, 'createdAt'>;
const dateOf = (v: Date | string) => (v instanceof Date ? v : new Date(v));
const dateOrNull = (v: Date | string | null) => (v === null ? null : dateOf(v));

const investigationOf = (r: RawInvestigation): InvestigationRow => ({
  ...r,
  startedAt: dateOrNull(r.startedAt),
  completedAt: dateOrNull(r.completedAt),
  createdAt: dateOf(r.createdAt),
  updatedAt: dateOf(r.updatedAt),
});
const findingOf = (r: RawFinding): FindingRow => ({ ...r, createdAt: dateOf(r.createdAt) });

const ACTIVE = sql.raw(`status in (${ACTIVE_STATUSES.map((s) => `'${s}'`).join(', ')})`);
const elapsedMs = sql`(extract(epoch from (now() - coalesce(started_at, created_at))) * 1000)::int`;
// A column the caller left out takes its default, as it would had the insert not named it.
const orDefault = (v: unknown) => (v === undefined ? sql`default` : sql`${v}`);

/**
 * The runner's patch, as one statement text whatever it holds (an absent field keeps its value).
 * Progress only moves forward: a retried or restarted run starts collecting again under the
 * progress the pages already showed (they poll it and must never see it go back); greatest()
 * ignores the null of an absent progress.
 */
const runPatch = (patch: RunPatch) => sql`
  current_phase = coalesce(${patch.currentPhase ?? null}::text, current_phase),
  records_processed = coalesce(${patch.recordsProcessed ?? null}::int, records_processed),
  progress = greatest(progress, ${patch.progress ?? null}::real)`;

// A write by the runner lands only while the row is still running under the same run number: a
// cancel, or a newer run after this one's instance was presumed dead, makes it a no-op.
const ownsRun = (id: string, run: number) => sql`id = ${id} and status = 'running' and run_count = ${run}`;

export function createInvestigationRepo(db: Db) {
  const exec = async <T>(q: SQL, on: Pick<Db, 'execute'> = db) => rowsOf<T>(await on.execute(q));
  // An ended investigation never reads its upload again.
  const dropInput = (id: string) =>
    db.execute(sql`delete from investigation_inputs where investigation_id = ${id}`);

  return {
    /** Inserts the row and the upload in the caller's transaction. */
    async insert(tx: Tx, row: NewInvestigation, contracts: readonly Contract[] | null): Promise<void> {
      await tx.execute(sql`
        insert into investigations (id, user_id, session_id, query, data_source, source_kind, sample_data,
          filters, anomaly_types, records_expected, job_id)
        values (${row.id}, ${orDefault(row.userId)}, ${orDefault(row.sessionId)}, ${orDefault(row.query)},
          ${row.dataSource}, ${row.sourceKind}, ${orDefault(row.sampleData)},
          ${row.filters === undefined ? sql`default` : sql`${JSON.stringify(row.filters)}::jsonb`},
          array(select jsonb_array_elements_text(${JSON.stringify(row.anomalyTypes)}::jsonb)),
          ${orDefault(row.recordsExpected)}, ${orDefault(row.jobId)})`);
      if (!contracts || contracts.length === 0) return;
      const parts = [];
      for (let i = 0; i * INPUT_CHUNK_SIZE < contracts.length; i++) {
        parts.push(JSON.stringify(contracts.slice(i * INPUT_CHUNK_SIZE, (i + 1) * INPUT_CHUNK_SIZE)));
      }
      // Compressed on libuv's thread pool, chunks in parallel, off the event loop.
      const packed = await Promise.all(parts.map((json) => deflate(json, { level: 1 })));
      // One multi-row VALUES with each chunk a binary parameter: a JSON recordset would need the
      // megabytes of bytea re-encoded as text, and there are only a handful of rows.
      await tx.execute(sql`
        insert into investigation_inputs (investigation_id, chunk, contracts)
        values ${sql.join(
          packed.map((bytes, chunk) => sql`(${row.id}, ${chunk}, ${bytes})`),
          sql`, `,
        )}`);
    },

    async get(id: string): Promise<InvestigationRow | null> {
      const { rows } = await executeNamed(
        db,
        'investigation_get_v1',
        sql`select ${INVESTIGATION_COLS} from investigations where id = ${id}`,
      );
      const row = rows[0] as RawInvestigation | undefined;
      return row ? investigationOf(row) : null;
    },

    /** The user's investigations, newest first. */
    async listByUser(userId: string, limit: number): Promise<InvestigationRow[]> {
      const rows = await exec<RawInvestigation>(sql`
        select ${INVESTIGATION_COLS} from investigations where user_id = ${userId}
        order by created_at desc, id desc limit ${limit}`);
      return rows.map(investigationOf);
    },

    async findingsAfter(id: string, afterSeq: number, limit: number): Promise<FindingRow[]> {
      const rows = await exec<RawFinding>(sql`
        select ${FINDING_COLS} from investigation_findings
        where investigation_id = ${id} and seq > ${afterSeq}
        order by seq limit ${limit}`);
      return rows.map(findingOf);
    },

    /** Cancels a pending or running investigation; null when it had already ended. */
    async cancel(id: string): Promise<InvestigationRow | null> {
      const rows = await exec<RawInvestigation>(sql`
        update investigations set status = 'cancelled', current_phase = 'cancelled', completed_at = now(),
          processing_time_ms = ${elapsedMs}, progress_seq = progress_seq + 1, updated_at = now()
        where id = ${id} and ${ACTIVE}
        returning ${INVESTIGATION_COLS}`);
      if (rows[0]) await dropInput(id);
      return rows[0] ? investigationOf(rows[0]) : null;
    },

    async statusOf(id: string): Promise<{ status: InvestigationStatus; runCount: number } | null> {
      // Polled by every run for a cancel made on another instance.
      const { rows } = await executeNamed(
        db,
        'investigation_status_v1',
        sql`select status, run_count as "runCount" from investigations where id = ${id}`,
      );
      return (rows[0] as { status: InvestigationStatus; runCount: number } | undefined) ?? null;
    },

    /** Starts a run: bumps the run number and clears what an interrupted earlier run left. */
    async claimRun(id: string, instanceId: string): Promise<InvestigationRow | null> {
      return db.transaction(async (tx) => {
        const rows = await exec<RawInvestigation>(
          sql`
          update investigations set status = 'running', run_count = run_count + 1, instance_id = ${instanceId},
            current_phase = 'collecting', records_processed = 0, anomalies_detected = 0, error = null,
            started_at = coalesce(started_at, now()), progress_seq = progress_seq + 1, updated_at = now()
          where id = ${id} and ${ACTIVE}
          returning ${INVESTIGATION_COLS}`,
          tx,
        );
        const row = rows[0];
        if (!row) return null;
        await tx.execute(sql`delete from investigation_findings where investigation_id = ${id}`);
        return investigationOf(row);
      });
    },

    /** Records progress; false when the run is no longer ours (cancelled or superseded). */
    async progress(id: string, run: number, patch: RunPatch): Promise<boolean> {
      // One statement text for every patch, so it can be a named statement: a run writes it per page.
      const { rows } = await executeNamed(
        db,
        'investigation_progress_v1',
        sql`
        update investigations set ${runPatch(patch)}, progress_seq = progress_seq + 1, updated_at = now()
        where ${ownsRun(id, run)}
        returning id`,
      );
      return rows.length === 1;
    },

    /** Stores one detector step's findings with the progress that goes with them, atomically. */
    async addFindings(id: string, run: number, firstSeq: number, findings: Finding[], patch: RunPatch) {
      return db.transaction(async (tx) => {
        const rows = await exec<{ id: string }>(
          sql`
          update investigations set ${runPatch(patch)}, anomalies_detected = anomalies_detected + ${findings.length},
            progress_seq = progress_seq + 1, updated_at = now()
          where ${ownsRun(id, run)}
          returning id`,
          tx,
        );
        if (rows.length === 0) return false;
        if (findings.length > 0) {
          const json = JSON.stringify(
            findings.map((f, i) => ({
              seq: firstSeq + i,
              finding_id: f.id,
              type: f.type,
              severity: f.severity,
              confidence: f.confidence,
              title: f.title,
              explanation: f.explanation,
              contract_ids: f.contract_ids,
              evidence: f.evidence,
            })),
          );
          // One statement for the step's findings, however many; a finding already stored is kept.
          await tx.execute(sql`
            insert into investigation_findings (investigation_id, seq, finding_id, type, severity, confidence,
              title, explanation, contract_ids, evidence)
            select ${id}::uuid, x.seq, x.finding_id, x.type, x.severity, x.confidence, x.title, x.explanation,
              x.contract_ids, coalesce(x.evidence, '{}'::jsonb)
            from jsonb_to_recordset(${json}::jsonb) as x(seq int, finding_id text, type text, severity real,
              confidence real, title text, explanation text, contract_ids text[], evidence jsonb)
            on conflict do nothing`);
        }
        return true;
      });
    },

    /** Completes the run and drops its stored upload; false when the run is no longer ours. */
    async complete(id: string, run: number, result: RunResult): Promise<boolean> {
      return db.transaction(async (tx) => {
        const rows = await exec<{ id: string }>(
          sql`
          update investigations set records_processed = ${result.recordsProcessed},
            anomalies_detected = ${result.anomaliesDetected}, confidence = ${result.confidence},
            summary = ${result.summary}, status = 'completed', current_phase = 'completed', progress = 1,
            completed_at = now(), processing_time_ms = ${elapsedMs}, progress_seq = progress_seq + 1,
            updated_at = now()
          where ${ownsRun(id, run)}
          returning id`,
          tx,
        );
        if (rows.length === 0) return false;
        await tx.execute(sql`delete from investigation_inputs where investigation_id = ${id}`);
        return true;
      });
    },

    /** Ends an active investigation as failed (run omitted: whichever run it is in, e.g. dead-lettered). */
    async fail(id: string, run: number | null, error: string): Promise<boolean> {
      const rows = await exec<{ id: string }>(sql`
        update investigations set status = 'failed', current_phase = 'failed', error = ${error},
          completed_at = now(), processing_time_ms = ${elapsedMs}, progress_seq = progress_seq + 1,
          updated_at = now()
        where ${run === null ? sql`id = ${id} and ${ACTIVE}` : ownsRun(id, run)}
        returning id`);
      if (rows.length === 1) await dropInput(id);
      return rows.length === 1;
    },

    /** Puts a run back to pending (shutdown hand-back, or a failed attempt that will be retried). */
    async requeue(id: string, run: number, phase: string, error: string | null = null): Promise<void> {
      await db.execute(sql`
        update investigations set status = 'pending', current_phase = ${phase}, error = ${error},
          progress_seq = progress_seq + 1, updated_at = now()
        where ${ownsRun(id, run)}`);
    },

    /** One stored chunk of an upload (INPUT_CHUNK_SIZE contracts), or null past the last one. */
    async inputChunk(id: string, chunk: number): Promise<Contract[] | null> {
      // bytea: a Buffer on node-postgres, a Uint8Array on PGlite; zlib takes either.
      const rows = await exec<{ packed: Uint8Array }>(sql`
        select contracts as packed from investigation_inputs where investigation_id = ${id} and chunk = ${chunk}`);
      if (!rows[0]) return null;
      return JSON.parse((await inflate(rows[0].packed)).toString('utf8')) as Contract[];
    },
  };
}

export type InvestigationRepo = ReturnType<typeof createInvestigationRepo>;
