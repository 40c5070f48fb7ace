// The investigations service: create, read, cancel and stream, over a durable job that runs the detectors.
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { DbHandle } from '../../db/client.js';
import { AppError } from '../../errors.js';
import { findOutage } from '../../lib/outage.js';
import { createDetectorRun, type DetectorOptions } from './detectors/index.js';
import { createEntityAggregator } from './entities.js';
import { createContractIndex } from './investigations.public.js';
import { createInvestigationRepo, type InvestigationRow, isActive } from './investigations.repo.js';
import { type CreateBody, readUpload, resultsBody, statusBody, summarize } from './investigations.schemas.js';
import { createJobRunner, JobAborted, type JobContext } from './jobs.js';
import { createProgressHub, createStreamer } from './progress.js';
import { assertSupportedSource, createdSelection, selectionSummary } from './selection.js';
import {
  type ContractFilters,
  type ContractSource,
  createPortalSource,
  createSampleSource,
  PortalError,
} from './sources/index.js';
import { ANOMALY_TYPES, type AnomalyType, type Finding } from './types.js';

export interface InvestigationsDeps {
  db: DbHandle;
  config: Pick<
    Config,
    'TRANSPARENCY_API_KEY' | 'TRANSPARENCY_API_BASE_URL' | 'INVESTIGATION_MAX_CONTRACTS' | 'SSE_HEARTBEAT_MS'
  >;
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

export interface InvestigationJob {
  investigationId: string;
}

export interface CreateInput extends CreateBody {
  /** The chat session that started it, if any. */
  sessionId?: string | null;
}

// Share of the progress bar: reading the data, then the detector steps; the rest is saving.
const COLLECT = 0.5;
const ANALYSE = 0.45;

const MESSAGES = {
  timeout: 'A investigação excedeu o tempo limite e foi interrompida.',
  portal: 'Não foi possível obter os contratos do Portal da Transparência.',
  noKey: 'Esta investigação usa o Portal da Transparência, mas nenhuma chave de API está configurada.',
  internal: 'Erro interno ao processar a investigação.',
  dead: 'A investigação falhou depois de várias tentativas.',
};

/** Not worth a retry: the same request would fail the same way. */
class PermanentFailure extends Error {}

const isClientError = (err: unknown) =>
  err instanceof PortalError && err.status !== undefined && err.status < 500 && err.status !== 429;

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
  });

  function sourceFor(row: InvestigationRow): ContractSource {
    if (row.sourceKind === 'upload') return repo.uploadSource(row.id);
    if (row.sourceKind === 'sample') return createSampleSource();
    if (!config.TRANSPARENCY_API_KEY) throw new PermanentFailure(MESSAGES.noKey);
    return createPortalSource({
      baseUrl: config.TRANSPARENCY_API_BASE_URL,
      apiKey: config.TRANSPARENCY_API_KEY,
      pageSize: tuning.portalPageSize,
      log,
    });
  }

  /** Source pages → detectors → findings → entity graph, checking for a stop between pages and steps. */
  async function analyse(row: InvestigationRow, signal: AbortSignal): Promise<void> {
    const { id, runCount: run } = row;
    // Every runner write is guarded (see the repo): one that does not land means cancelled or superseded.
    const stillOurs = (landed: boolean) => {
      if (!landed) throw new JobAborted('cancelled');
      hub.notify(id);
    };
    const filters = row.filters as ContractFilters;
    const detectors = createDetectorRun(row.anomalyTypes as AnomalyType[], deps.detectorOptions);
    const graph = createEntityAggregator();
    // Each finding keeps its contracts' data for the frontend's results page.
    const seenContracts = createContractIndex();
    const expected = Math.max(
      1,
      row.recordsExpected ?? filters.max_records ?? config.INVESTIGATION_MAX_CONTRACTS,
    );
    let lastWrite = Date.now();
    for await (const page of sourceFor(row).pages(filters, signal)) {
      detectors.add(page);
      graph.add(page);
      seenContracts.add(page);
      signal.throwIfAborted();
      if (Date.now() - lastWrite >= tuning.progressIntervalMs) {
        const seen = detectors.recordsSeen;
        const progress = COLLECT * Math.min(1, seen / expected);
        stillOurs(await repo.progress(id, run, { recordsProcessed: seen, progress }));
        lastWrite = Date.now();
      }
    }
    const records = detectors.recordsSeen;
    const steps = detectors.steps();
    const phase = (i: number) => (steps[i] ? `analyzing:${steps[i].type}` : 'saving');
    stillOurs(
      await repo.progress(id, run, { recordsProcessed: records, progress: COLLECT, currentPhase: phase(0) }),
    );
    const findings: Finding[] = [];
    for (const [i, step] of steps.entries()) {
      signal.throwIfAborted();
      const found = seenContracts.attach(step.run());
      graph.addFindings(found);
      const patch = { currentPhase: phase(i + 1), progress: COLLECT + (ANALYSE * (i + 1)) / steps.length };
      stillOurs(await repo.addFindings(id, run, findings.length + 1, found, patch));
      findings.push(...found);
    }
    signal.throwIfAborted();
    const confidence = findings.length
      ? findings.reduce((s, f) => s + f.confidence, 0) / findings.length
      : null;
    const summary = selectionSummary(filters, records, summarize(records, findings, row.sampleData));
    const result = { recordsProcessed: records, anomaliesDetected: findings.length, confidence, summary };
    stillOurs(await repo.complete(id, run, result));
    log.info({ investigationId: id, records, findings: findings.length }, 'investigation completed');
    // After the answer is out: the graph is derived data, and a big run upserts ~100,000 edges.
    try {
      await graph.upsert(deps.db.db, id);
    } catch (err) {
      log.error({ err, investigationId: id, ...graph.size }, 'entity graph not updated');
    }
  }

  async function runJob(job: JobContext<InvestigationJob>): Promise<void> {
    const id = job.data.investigationId;
    const row = await repo.claimRun(id, deps.instanceId);
    if (!row) return; // cancelled before it started, or already ended
    hub.notify(id);
    const run = row.runCount;
    // A cancel on another instance reaches this run through its row: re-read it every cancelPollMs.
    const elsewhere = new AbortController();
    const signal = AbortSignal.any([job.signal, elsewhere.signal]);
    const watch = setInterval(() => {
      repo.statusOf(id).then(
        (s) => {
          if (s?.status !== 'running' || s.runCount !== run) elsewhere.abort(new JobAborted('cancelled'));
        },
        () => {},
      );
    }, tuning.cancelPollMs);
    try {
      await analyse(row, signal);
    } catch (err) {
      const reason = signal.aborted ? signal.reason : err;
      if (reason instanceof JobAborted) {
        if (reason.reason === 'shutdown') {
          await repo.requeue(id, run, 'requeued');
          throw reason;
        }
        if (reason.reason === 'timeout') await repo.fail(id, run, MESSAGES.timeout);
        return; // cancelled: the row already says so
      }
      // A database restart is not a bug: the attempt is retried (below) like any other failure.
      const outage = findOutage(err);
      if (outage)
        log.warn({ cause: outage, investigationId: id, attempt: job.attempt }, 'investigation run failed');
      else log.error({ err, investigationId: id, attempt: job.attempt }, 'investigation run failed');
      // The Portal's agency errors are the user's to fix, and say how: their message is kept.
      const agencyError =
        err instanceof PortalError &&
        (err.code === 'PORTAL_NEEDS_AGENCY' || err.code === 'PORTAL_AGENCY_NOT_FOUND');
      const message =
        err instanceof PermanentFailure || agencyError
          ? (err as Error).message
          : err instanceof PortalError
            ? MESSAGES.portal
            : MESSAGES.internal;
      if (err instanceof PermanentFailure || agencyError || isClientError(err) || job.lastAttempt) {
        await repo.fail(id, run, message);
        return;
      }
      await repo.requeue(id, run, 'retrying', message);
      throw err;
    } finally {
      clearInterval(watch);
      hub.notify(id);
    }
  }

  const runner = createJobRunner<InvestigationJob>({
    db: deps.db,
    log,
    queue: 'investigations',
    handler: runJob,
    // Failed for good, including a run whose instance died on its last attempt.
    onDeadLetter: async ({ investigationId }) => {
      if (await repo.fail(investigationId, null, MESSAGES.dead)) hub.notify(investigationId);
    },
    keyOf: (job) => job.investigationId,
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
      if (row.status === 'pending' && row.jobId) await runner.cancel(row.jobId).catch(() => {});
      hub.notify(id);
      return statusBody(cancelled);
    },

    async stream(
      caller: string | null,
      id: string,
      req: FastifyRequest,
      reply: FastifyReply,
      after?: string,
    ) {
      await streamer.stream(req, reply, await visible(caller, id), after);
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
    },
  };
}

export type InvestigationService = ReturnType<typeof createInvestigations>['service'];
