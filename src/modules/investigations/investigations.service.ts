// The investigations service: create, read, cancel and stream, over a durable job that runs the detectors.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { DbHandle } from '../../db/client.js';
import { AppError } from '../../errors.js';
import type { DetectorOptions } from './detectors/index.js';
import { createInvestigationRepo, type InvestigationRow, isActive } from './investigations.repo.js';
import { type CreateBody, readUpload, resultsBody, statusBody } from './investigations.schemas.js';
import { createInvestigationJob, type InvestigationJob, type JobDeps } from './jobs.js';
import { createProgressHub, createStreamer } from './progress.js';
import { createJobRunner } from './queue.js';
import { assertSupportedSource, createdSelection } from './selection.js';
import { ANOMALY_TYPES } from './types.js';

export interface InvestigationsDeps {
  db: DbHandle;
  /** What the runs read (see JobDeps), and the SSE heartbeat of the progress streams. */
  config: JobDeps['config'] & Pick<Config, 'SSE_HEARTBEAT_MS'>;
  log: Logger;
  instanceId: string;
  /** Job and follower timings; the defaults suit production. */
  tuning?: Partial<InvestigationTuning>;
  detectorOptions?: Partial<DetectorOptions>;
}

export interface InvestigationTuning {
  /** Investigations run at once on one instance. */
  concurrency: number;
  /** A run is stopped, and the investigation failed, after this long. */
  timeoutSeconds: number;
  /** Further attempts after a failed one (Portal down, database error). */
  retryLimit: number;
  retryDelaySeconds: number;
  /** How often idle workers look for queued investigations (other instances' jobs). */
  pollingIntervalSeconds: number;
  /** A run renews its lease within this; a dead instance's run is retried elsewhere soon after. */
  leaseSeconds: number;
  /** How often an SSE follower re-reads the database when nothing on this instance woke it. */
  streamPollMs: number;
  /** How often a run re-reads its row to notice a cancel made on another instance. */
  cancelPollMs: number;
  /** Least time between two progress writes while pages stream in. */
  progressIntervalMs: number;
  /** Portal records per page (the Portal serves 15). */
  portalPageSize: number | undefined;
}

const DEFAULT_TUNING: InvestigationTuning = {
  concurrency: 2,
  timeoutSeconds: 600,
  retryLimit: 2,
  retryDelaySeconds: 5,
  pollingIntervalSeconds: 1,
  leaseSeconds: 30,
  streamPollMs: 500,
  cancelPollMs: 1000,
  progressIntervalMs: 250,
  portalPageSize: undefined,
};

export interface CreateInput extends CreateBody {
  /** The chat session that started it, if any. */
  sessionId?: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createInvestigations(deps: InvestigationsDeps) {
  const { config, log } = deps;
  const tuning: InvestigationTuning = { ...DEFAULT_TUNING, ...deps.tuning };
  const repo = createInvestigationRepo(deps.db.db);
  const hub = createProgressHub();
  const streamer = createStreamer({
    repo,
    hub,
    heartbeatMs: config.SSE_HEARTBEAT_MS,
    pollMs: tuning.streamPollMs,
    log,
  });

  const job = createInvestigationJob({
    db: deps.db.db,
    repo,
    hub,
    config,
    log,
    instanceId: deps.instanceId,
    detectorOptions: deps.detectorOptions,
    progressIntervalMs: tuning.progressIntervalMs,
    cancelPollMs: tuning.cancelPollMs,
    portalPageSize: tuning.portalPageSize,
  });

  const runner = createJobRunner<InvestigationJob>({
    db: deps.db,
    log,
    queue: 'investigations',
    handler: job.run,
    onDeadLetter: job.deadLetter,
    keyOf: (data) => data.investigationId,
    ...tuning,
  });

  /** The row if the caller may see it: their own, or an anonymous one whose id they hold. */
  async function visible(caller: string | null, id: string): Promise<InvestigationRow> {
    const row = UUID.test(id) ? await repo.get(id) : null;
    if (!row || (row.userId !== null && row.userId !== caller)) throw new AppError('INVESTIGATION_NOT_FOUND');
    return row;
  }

  /** The frontend's `public/*` reads: public data is readable by whoever holds the id; uploads stay owner-only. */
  async function shared(caller: string | null, id: string): Promise<InvestigationRow> {
    const row = UUID.test(id) ? await repo.get(id) : null;
    const ownerOnly = row?.sourceKind === 'upload' && row.userId !== null && row.userId !== caller;
    if (!row || ownerOnly) throw new AppError('INVESTIGATION_NOT_FOUND');
    return row;
  }

  const service = {
    async create(caller: string | null, input: CreateInput) {
      const max = config.INVESTIGATION_MAX_CONTRACTS;
      assertSupportedSource(input.data_source);
      const { dataSource, contracts } = readUpload(input, max);
      const sourceKind =
        dataSource === 'upload' ? 'upload' : config.TRANSPARENCY_API_KEY ? 'portal' : 'sample';
      // The query and the filters together select the contracts (both must hold); a 422 says what is missing.
      const { filters, description } = createdSelection(input, sourceKind, max);
      const id = randomUUID();
      const jobId = randomUUID();
      await deps.db.db.transaction(async (tx) => {
        const row = {
          id,
          userId: caller,
          sessionId: input.sessionId ?? null,
          query: input.query ?? input.filters.query ?? '',
          dataSource,
          sourceKind,
          sampleData: sourceKind === 'sample',
          filters: filters as Record<string, unknown>,
          anomalyTypes: input.anomaly_types ?? [...ANOMALY_TYPES],
          recordsExpected: contracts?.length ?? null,
          jobId,
        } as const;
        await repo.insert(tx, row, contracts);
        // Enqueued in the same transaction: never a row without its job, nor a job without its row.
        await runner.send({ investigationId: id }, { id: jobId, tx });
      });
      if (contracts) job.hold(id, contracts);
      runner.wake();
      log.info({ investigationId: id, sourceKind, records: contracts?.length }, 'investigation queued');
      return {
        investigation_id: id,
        status: 'pending' as const,
        sample_data: sourceKind === 'sample',
        selection: description,
      };
    },

    async status(caller: string | null, id: string) {
      return statusBody(await visible(caller, id));
    },

    /** Always an array: the caller's own, newest first; anonymous callers have none. */
    async list(caller: string | null, limit: number) {
      return caller ? (await repo.listByUser(caller, limit)).map(statusBody) : [];
    },

    async results(caller: string | null, id: string) {
      const row = await visible(caller, id);
      if (isActive(row.status)) {
        const details = { status: row.status, progress: row.progress, current_phase: row.currentPhase };
        throw new AppError('INVESTIGATION_RUNNING', undefined, details);
      }
      return resultsBody(row, await repo.findingsAfter(id, 0, Number.MAX_SAFE_INTEGER));
    },

    /** The row and, once it has ended, its findings, for the frontend's shapes (investigations.public.ts). */
    async sharedView(caller: string | null, id: string, withFindings: boolean) {
      const row = await shared(caller, id);
      const findings =
        withFindings && !isActive(row.status) ? await repo.findingsAfter(id, 0, Number.MAX_SAFE_INTEGER) : [];
      return { row, findings };
    },

    /** The caller's own rows, newest first (the frontend's list shapes them itself). */
    async listRows(caller: string | null, limit: number) {
      return caller ? repo.listByUser(caller, limit) : [];
    },

    /** Cancels and stops the work wherever it runs; an investigation that already ended answers 409. */
    async cancel(caller: string | null, id: string) {
      const row = await visible(caller, id);
      const cancelled = row.status === 'cancelled' ? row : await repo.cancel(id);
      if (!cancelled) {
        const now = await visible(caller, id);
        if (now.status === 'cancelled') return statusBody(now);
        throw new AppError('CONFLICT', 'The investigation has already finished.', { status: now.status });
      }
      // On this instance the run stops now; elsewhere within cancelPollMs or at its next write.
      runner.abort(id, 'cancelled');
      job.release(id);
      if (row.status === 'pending' && row.jobId) await runner.cancel(row.jobId).catch(() => {});
      hub.notify(id);
      return statusBody(cancelled);
    },

    /** The investigation's SSE frames from a cursor: findings, progress, then one completion event. */
    async stream(caller: string | null, id: string, after: string | undefined, signal: AbortSignal) {
      return streamer.frames(await visible(caller, id), after, signal);
    },
  };

  return {
    service,
    /** Starts the job runner (installs pg-boss's schema on first boot). */
    start: () => runner.start(),
    /** Ends open streams, hands running jobs back to the queue, stops the runner. */
    async stop() {
      streamer.closeAll();
      await runner.stop();
      job.stop();
    },
  };
}

export type InvestigationService = ReturnType<typeof createInvestigations>['service'];
