// The investigation job: source pages → detectors → findings → entity graph, under a run the queue hands out.
// The API (investigations.service.ts) only enqueues; everything a run does is here.
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { findOutage } from '../../lib/outage.js';
import { createDetectorRun, type DetectorOptions } from './detectors/index.js';
import { createEntityAggregator } from './entities.js';
import { createContractIndex } from './investigations.public.js';
import type { InvestigationRepo, InvestigationRow } from './investigations.repo.js';
import { summarize } from './investigations.schemas.js';
import type { ProgressHub } from './progress.js';
import { JobAborted, type JobContext } from './queue.js';
import { selectionSummary } from './selection.js';
import {
  type ContractFilters,
  type ContractSource,
  createPortalSource,
  createSampleSource,
  PortalError,
} from './sources/index.js';
import { createHeldUploadSource, createStoredUploadSource } from './sources/upload.js';
import type { AnomalyType, Contract, Finding } from './types.js';

export interface InvestigationJob {
  investigationId: string;
}

export interface JobDeps {
  db: Db;
  repo: InvestigationRepo;
  hub: ProgressHub;
  config: Pick<
    Config,
    | 'TRANSPARENCY_API_KEY'
    | 'TRANSPARENCY_API_BASE_URL'
    | 'INVESTIGATION_MAX_CONTRACTS'
    | 'INVESTIGATION_CONTRACTS_KEPT'
  >;
  log: Logger;
  instanceId: string;
  detectorOptions?: Partial<DetectorOptions>;
  /** Least time between two progress writes while pages stream in. */
  progressIntervalMs: number;
  /** How often a run re-reads its row to notice a cancel made on another instance. */
  cancelPollMs: number;
  /** Portal records per page (the Portal serves 15). */
  portalPageSize: number | undefined;
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

// How long an accepted upload stays in memory for a local run before only the stored copy is left.
const HOLD_MS = 60_000;

/**
 * Uploads this instance accepted, held for the run that usually starts here a moment later: it reads
 * them from memory instead of inflating and parsing the stored copy (about a second per 100,000
 * contracts). The stored copy stays the truth for a run on another instance or after a restart.
 */
function createHeldUploads(maxHeld: number) {
  const held = new Map<string, { contracts: readonly Contract[]; timer: NodeJS.Timeout }>();
  let count = 0;
  const drop = (id: string) => {
    const entry = held.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    held.delete(id);
    count -= entry.contracts.length;
  };
  return {
    /** Memory stays bounded: past `maxHeld` contracts in all, an upload is only read back from the database. */
    hold(id: string, contracts: readonly Contract[]) {
      drop(id);
      if (count + contracts.length > maxHeld) return;
      const timer = setTimeout(() => drop(id), HOLD_MS);
      timer.unref();
      held.set(id, { contracts, timer });
      count += contracts.length;
    },
    /** The held contracts, handed over once. */
    take(id: string): readonly Contract[] | undefined {
      const contracts = held.get(id)?.contracts;
      drop(id);
      return contracts;
    },
    drop,
    clear() {
      for (const id of [...held.keys()]) drop(id);
    },
  };
}

export function createInvestigationJob(deps: JobDeps) {
  const { config, log, repo, hub } = deps;
  // Two of the largest uploads at most: what the queue's default concurrency runs at once.
  const held = createHeldUploads(2 * config.INVESTIGATION_MAX_CONTRACTS);

  function sourceFor(row: InvestigationRow): ContractSource {
    if (row.sourceKind === 'upload') {
      const contracts = held.take(row.id);
      return contracts
        ? createHeldUploadSource(contracts)
        : createStoredUploadSource((chunk) => repo.inputChunk(row.id, chunk));
    }
    if (row.sourceKind === 'sample') return createSampleSource();
    if (!config.TRANSPARENCY_API_KEY) throw new PermanentFailure(MESSAGES.noKey);
    return createPortalSource({
      baseUrl: config.TRANSPARENCY_API_BASE_URL,
      apiKey: config.TRANSPARENCY_API_KEY,
      pageSize: deps.portalPageSize,
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
    const seenContracts = createContractIndex(config.INVESTIGATION_CONTRACTS_KEPT);
    const expected = Math.max(
      1,
      row.recordsExpected ?? filters.max_records ?? config.INVESTIGATION_MAX_CONTRACTS,
    );
    let lastWrite = Date.now();
    // The graph is built after the answer from the contracts the index holds, unless the index fills
    // up (more contracts than it keeps): from then on every page feeds the graph as it comes.
    let graphFed = false;
    for await (const page of sourceFor(row).pages(filters, signal)) {
      detectors.add(page);
      seenContracts.add(page);
      if (!graphFed && seenContracts.full) {
        graph.add([...seenContracts.contracts()]);
        graphFed = true;
      }
      if (graphFed) graph.add(page);
      signal.throwIfAborted();
      if (Date.now() - lastWrite >= deps.progressIntervalMs) {
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
      if (!graphFed) graph.add([...seenContracts.contracts()]);
      graph.addFindings(findings);
      await graph.upsert(deps.db, id);
    } catch (err) {
      log.error({ err, investigationId: id, ...graph.size }, 'entity graph not updated');
    }
  }

  async function run(job: JobContext<InvestigationJob>): Promise<void> {
    const id = job.data.investigationId;
    const row = await repo.claimRun(id, deps.instanceId);
    if (!row) {
      held.drop(id);
      return; // cancelled before it started, or already ended
    }
    hub.notify(id);
    const runNo = row.runCount;
    // A cancel on another instance reaches this run through its row: re-read it every cancelPollMs.
    const elsewhere = new AbortController();
    const signal = AbortSignal.any([job.signal, elsewhere.signal]);
    const watch = setInterval(() => {
      repo.statusOf(id).then(
        (s) => {
          if (s?.status !== 'running' || s.runCount !== runNo) elsewhere.abort(new JobAborted('cancelled'));
        },
        () => {},
      );
    }, deps.cancelPollMs);
    try {
      await analyse(row, signal);
    } catch (err) {
      const reason = signal.aborted ? signal.reason : err;
      if (reason instanceof JobAborted) {
        if (reason.reason === 'shutdown') {
          await repo.requeue(id, runNo, 'requeued');
          throw reason;
        }
        if (reason.reason === 'timeout') await repo.fail(id, runNo, MESSAGES.timeout);
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
        await repo.fail(id, runNo, message);
        return;
      }
      await repo.requeue(id, runNo, 'retrying', message);
      throw err;
    } finally {
      clearInterval(watch);
      hub.notify(id);
    }
  }

  return {
    /** The queue's handler: one attempt of one investigation. */
    run,
    /** Failed for good, including a run whose instance died on its last attempt. */
    async deadLetter({ investigationId }: InvestigationJob): Promise<void> {
      if (await repo.fail(investigationId, null, MESSAGES.dead)) hub.notify(investigationId);
    },
    /** Keeps an accepted upload for the local run (after its transaction committed). */
    hold: held.hold,
    /** The investigation ended before its run took the upload (cancelled). */
    release: held.drop,
    stop: held.clear,
  };
}
