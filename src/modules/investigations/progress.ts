// Investigation progress over SSE: replay from the database after a cursor, then follow by polling.
import type { Logger } from 'pino';
import { frame } from '../../plugins/sse.js';
import type { InvestigationRepo, InvestigationRow } from './investigations.repo.js';
import { isActive } from './investigations.repo.js';
import { findingBody, statusBody } from './investigations.schemas.js';

/** Wakes this instance's followers of an investigation as soon as its runner writes. */
export interface ProgressHub {
  notify(id: string): void;
  /** Resolves on the next notify(id), or after `ms`. */
  wait(id: string, ms: number): Promise<void>;
}

export function createProgressHub(): ProgressHub {
  const waiters = new Map<string, Set<() => void>>();
  return {
    notify(id) {
      const set = waiters.get(id);
      if (!set) return;
      waiters.delete(id);
      for (const wake of set) wake();
    },
    wait(id, ms) {
      return new Promise((resolve) => {
        const set = waiters.get(id) ?? new Set();
        waiters.set(id, set);
        const wake = () => {
          clearTimeout(timer);
          set.delete(wake);
          if (set.size === 0 && waiters.get(id) === set) waiters.delete(id);
          resolve();
        };
        const timer = setTimeout(wake, ms);
        set.add(wake);
      });
    },
  };
}

/**
 * `<run>.<finding seq>.<progress seq>`: findings after `seq` of the same run are replayed; a
 * cursor from an earlier run (the job was restarted) replays the current run from its start.
 */
export interface Cursor {
  run: number;
  seq: number;
  pseq: number;
}

export function parseCursor(raw: string | undefined): Cursor | null {
  const m = raw ? /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})$/.exec(raw.trim()) : null;
  return m ? { run: Number(m[1]), seq: Number(m[2]), pseq: Number(m[3]) } : null;
}

const cursorId = (c: Cursor) => `${c.run}.${c.seq}.${c.pseq}`;

export interface StreamerDeps {
  repo: Pick<InvestigationRepo, 'get' | 'findingsAfter'>;
  hub: ProgressHub;
  heartbeatMs: number;
  /** How often a follower re-reads the database when no local notification came (other instances). */
  pollMs: number;
  log: Pick<Logger, 'warn'>;
}

const PAGE = 200;

function progressEvent(row: InvestigationRow) {
  const s = statusBody(row);
  return {
    type: 'progress',
    investigation_id: s.investigation_id,
    status: s.status,
    current_phase: s.current_phase,
    progress: s.progress,
    records_processed: s.records_processed,
    anomalies_detected: s.anomalies_detected,
    sample_data: s.sample_data,
    timestamp: new Date().toISOString(),
  };
}

function completionEvent(row: InvestigationRow) {
  const s = statusBody(row);
  return {
    type: 'completion',
    investigation_id: s.investigation_id,
    status: s.status,
    records_analyzed: s.records_processed,
    anomalies_found: s.anomalies_detected,
    confidence: s.confidence,
    summary: s.summary,
    error: s.error,
    sample_data: s.sample_data,
    completed_at: s.completed_at,
    processing_time_ms: s.processing_time_ms,
    timestamp: new Date().toISOString(),
  };
}

/** Resolves when the signal aborts (never rejects), so a wait can race it. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export function createStreamer(deps: StreamerDeps) {
  // Every open stream's stop: shutdown ends them all (clients reconnect elsewhere with their cursor).
  const open = new Set<AbortController>();

  async function* follow(first: InvestigationRow, after: string | undefined, signal: AbortSignal) {
    const id = first.id;
    const given = parseCursor(after);
    const at: Cursor = given ?? { run: first.runCount, seq: 0, pseq: -1 };
    const stopped = aborted(signal);
    while (!signal.aborted) {
      const row = await deps.repo.get(id);
      if (!row) return;
      if (row.runCount !== at.run) {
        at.run = row.runCount;
        at.seq = 0;
      }
      const findings = await deps.repo.findingsAfter(id, at.seq, PAGE);
      // One string per batch: the SSE writer sends a burst in one socket write.
      let batch = '';
      for (const f of findings) {
        at.seq = f.seq;
        batch += frame(cursorId(at), {
          type: 'anomaly',
          investigation_id: id,
          sample_data: row.sampleData,
          finding: findingBody(f),
        });
      }
      if (findings.length === PAGE) {
        yield batch;
        continue;
      }
      if (row.progressSeq !== at.pseq) {
        at.pseq = row.progressSeq;
        batch += frame(cursorId(at), progressEvent(row));
      }
      // Findings are written before the terminal status, so after a terminal row all are sent.
      if (!isActive(row.status)) {
        yield batch + frame(cursorId(at), completionEvent(row));
        return;
      }
      if (batch) yield batch;
      await Promise.race([deps.hub.wait(id, deps.pollMs), stopped]);
    }
  }

  return {
    /**
     * SSE frames of one investigation the caller may see (ownership is checked before this): replayed
     * after the cursor, then followed until it ends, `signal` aborts (client gone) or shutdown.
     */
    async *frames(first: InvestigationRow, after: string | undefined, signal: AbortSignal) {
      const stop = new AbortController();
      open.add(stop);
      try {
        yield* follow(first, after, AbortSignal.any([signal, stop.signal]));
      } catch (err) {
        // The stream ends (the client reconnects with its cursor); the log says why.
        deps.log.warn({ err, investigationId: first.id }, 'investigation stream failed');
      } finally {
        open.delete(stop);
      }
    },

    /** Ends every open stream (shutdown); clients reconnect elsewhere with their cursor. */
    closeAll() {
      for (const stop of open) stop.abort();
      open.clear();
    },
  };
}

export type Streamer = ReturnType<typeof createStreamer>;
