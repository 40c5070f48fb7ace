// Investigation queries: the API's reads scoped by caller, and the runner's writes guarded by run number.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { and, asc, desc, eq, gt, inArray, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import {
  type InvestigationStatus,
  investigationFindings,
  investigationInputs,
  investigations,
} from '../../db/schema/investigations.js';
import type { Contract, Finding } from './types.js';

const deflate = promisify(zlib.deflate);
const inflate = promisify(zlib.inflate);

export type InvestigationRow = typeof investigations.$inferSelect;
export type NewInvestigation = typeof investigations.$inferInsert;
export type FindingRow = typeof investigationFindings.$inferSelect;

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

const elapsedMs = sql<number>`(extract(epoch from (now() - coalesce(${investigations.startedAt}, ${investigations.createdAt}))) * 1000)::int`;

/**
 * Progress only moves forward: a retried or restarted run starts collecting again under the
 * progress the pages already showed (they poll it and must never see it go back).
 */
function monotonic(patch: RunPatch) {
  const { progress, ...rest } = patch;
  return progress === undefined
    ? rest
    : { ...rest, progress: sql`greatest(${investigations.progress}, ${progress})` };
}

export function createInvestigationRepo(db: Db) {
  // A write by the runner lands only while the row is still running under the same run number: a
  // cancel, or a newer run after this one's instance was presumed dead, makes it a no-op.
  const ownsRun = (id: string, run: number) =>
    and(eq(investigations.id, id), eq(investigations.status, 'running'), eq(investigations.runCount, run));
  // An ended investigation never reads its upload again.
  const dropInput = (id: string) =>
    db.delete(investigationInputs).where(eq(investigationInputs.investigationId, id));

  return {
    /** Inserts the row and the upload in the caller's transaction. */
    async insert(tx: Tx, row: NewInvestigation, contracts: readonly Contract[] | null): Promise<void> {
      await tx.insert(investigations).values(row);
      if (!contracts || contracts.length === 0) return;
      const parts = [];
      for (let i = 0; i * INPUT_CHUNK_SIZE < contracts.length; i++) {
        parts.push(JSON.stringify(contracts.slice(i * INPUT_CHUNK_SIZE, (i + 1) * INPUT_CHUNK_SIZE)));
      }
      // Compressed on libuv's thread pool, chunks in parallel, off the event loop.
      const packed = await Promise.all(parts.map((json) => deflate(json, { level: 1 })));
      await tx
        .insert(investigationInputs)
        .values(packed.map((contracts, chunk) => ({ investigationId: row.id, chunk, contracts })));
    },

    async get(id: string): Promise<InvestigationRow | null> {
      const rows = await db.select().from(investigations).where(eq(investigations.id, id)).limit(1);
      return rows[0] ?? null;
    },

    /** The user's investigations, newest first. */
    async listByUser(userId: string, limit: number): Promise<InvestigationRow[]> {
      return db
        .select()
        .from(investigations)
        .where(eq(investigations.userId, userId))
        .orderBy(desc(investigations.createdAt), desc(investigations.id))
        .limit(limit);
    },

    async findingsAfter(id: string, afterSeq: number, limit: number): Promise<FindingRow[]> {
      return db
        .select()
        .from(investigationFindings)
        .where(and(eq(investigationFindings.investigationId, id), gt(investigationFindings.seq, afterSeq)))
        .orderBy(asc(investigationFindings.seq))
        .limit(limit);
    },

    /** Cancels a pending or running investigation; null when it had already ended. */
    async cancel(id: string): Promise<InvestigationRow | null> {
      const rows = await db
        .update(investigations)
        .set({
          status: 'cancelled',
          currentPhase: 'cancelled',
          completedAt: sql`now()`,
          processingTimeMs: elapsedMs,
          progressSeq: sql`${investigations.progressSeq} + 1`,
          updatedAt: sql`now()`,
        })
        .where(and(eq(investigations.id, id), inArray(investigations.status, ACTIVE_STATUSES)))
        .returning();
      if (rows[0]) await dropInput(id);
      return rows[0] ?? null;
    },

    async statusOf(id: string): Promise<{ status: InvestigationStatus; runCount: number } | null> {
      const rows = await db
        .select({ status: investigations.status, runCount: investigations.runCount })
        .from(investigations)
        .where(eq(investigations.id, id));
      return rows[0] ?? null;
    },

    /** Starts a run: bumps the run number and clears what an interrupted earlier run left. */
    async claimRun(id: string, instanceId: string): Promise<InvestigationRow | null> {
      return db.transaction(async (tx) => {
        const rows = await tx
          .update(investigations)
          .set({
            status: 'running',
            runCount: sql`${investigations.runCount} + 1`,
            instanceId,
            currentPhase: 'collecting',
            recordsProcessed: 0,
            anomaliesDetected: 0,
            error: null,
            startedAt: sql`coalesce(${investigations.startedAt}, now())`,
            progressSeq: sql`${investigations.progressSeq} + 1`,
            updatedAt: sql`now()`,
          })
          .where(and(eq(investigations.id, id), inArray(investigations.status, ACTIVE_STATUSES)))
          .returning();
        const row = rows[0];
        if (!row) return null;
        await tx.delete(investigationFindings).where(eq(investigationFindings.investigationId, id));
        return row;
      });
    },

    /** Records progress; false when the run is no longer ours (cancelled or superseded). */
    async progress(id: string, run: number, patch: RunPatch): Promise<boolean> {
      const rows = await db
        .update(investigations)
        .set({
          ...monotonic(patch),
          progressSeq: sql`${investigations.progressSeq} + 1`,
          updatedAt: sql`now()`,
        })
        .where(ownsRun(id, run))
        .returning({ id: investigations.id });
      return rows.length === 1;
    },

    /** Stores one detector step's findings with the progress that goes with them, atomically. */
    async addFindings(id: string, run: number, firstSeq: number, findings: Finding[], patch: RunPatch) {
      return db.transaction(async (tx) => {
        const rows = await tx
          .update(investigations)
          .set({
            ...monotonic(patch),
            anomaliesDetected: sql`${investigations.anomaliesDetected} + ${findings.length}`,
            progressSeq: sql`${investigations.progressSeq} + 1`,
            updatedAt: sql`now()`,
          })
          .where(ownsRun(id, run))
          .returning({ id: investigations.id });
        if (rows.length === 0) return false;
        if (findings.length > 0) {
          await tx
            .insert(investigationFindings)
            .values(
              findings.map((f, i) => ({
                investigationId: id,
                seq: firstSeq + i,
                findingId: f.id,
                type: f.type,
                severity: f.severity,
                confidence: f.confidence,
                title: f.title,
                explanation: f.explanation,
                contractIds: f.contract_ids,
                evidence: f.evidence,
              })),
            )
            .onConflictDoNothing();
        }
        return true;
      });
    },

    /** Completes the run and drops its stored upload; false when the run is no longer ours. */
    async complete(id: string, run: number, result: RunResult): Promise<boolean> {
      return db.transaction(async (tx) => {
        const rows = await tx
          .update(investigations)
          .set({
            ...result,
            status: 'completed',
            currentPhase: 'completed',
            progress: 1,
            completedAt: sql`now()`,
            processingTimeMs: elapsedMs,
            progressSeq: sql`${investigations.progressSeq} + 1`,
            updatedAt: sql`now()`,
          })
          .where(ownsRun(id, run))
          .returning({ id: investigations.id });
        if (rows.length === 0) return false;
        await tx.delete(investigationInputs).where(eq(investigationInputs.investigationId, id));
        return true;
      });
    },

    /** Ends an active investigation as failed (run omitted: whichever run it is in, e.g. dead-lettered). */
    async fail(id: string, run: number | null, error: string): Promise<boolean> {
      const rows = await db
        .update(investigations)
        .set({
          status: 'failed',
          currentPhase: 'failed',
          error,
          completedAt: sql`now()`,
          processingTimeMs: elapsedMs,
          progressSeq: sql`${investigations.progressSeq} + 1`,
          updatedAt: sql`now()`,
        })
        .where(
          run === null
            ? and(eq(investigations.id, id), inArray(investigations.status, ACTIVE_STATUSES))
            : ownsRun(id, run),
        )
        .returning({ id: investigations.id });
      if (rows.length === 1) await dropInput(id);
      return rows.length === 1;
    },

    /** Puts a run back to pending (shutdown hand-back, or a failed attempt that will be retried). */
    async requeue(id: string, run: number, phase: string, error: string | null = null): Promise<void> {
      await db
        .update(investigations)
        .set({
          status: 'pending',
          currentPhase: phase,
          error,
          progressSeq: sql`${investigations.progressSeq} + 1`,
          updatedAt: sql`now()`,
        })
        .where(ownsRun(id, run));
    },

    /** One stored chunk of an upload (INPUT_CHUNK_SIZE contracts), or null past the last one. */
    async inputChunk(id: string, chunk: number): Promise<Contract[] | null> {
      const rows = await db
        .select({ packed: investigationInputs.contracts })
        .from(investigationInputs)
        .where(and(eq(investigationInputs.investigationId, id), eq(investigationInputs.chunk, chunk)));
      if (!rows[0]) return null;
      return JSON.parse((await inflate(rows[0].packed)).toString('utf8')) as Contract[];
    },
  };
}

export type InvestigationRepo = ReturnType<typeof createInvestigationRepo>;
