// Investigation progress over SSE: replay from the database after a cursor, then follow by polling.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { openSse, type SseStream } from '../../plugins/sse.js';
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

export function createStreamer(deps: StreamerDeps) {
  const open = new Set<SseStream>();

  async function send(sse: SseStream, id: string, data: unknown) {
    if (!sse.send(id, data)) await sse.drained();
  }

  return {
    /** Streams one investigation the caller may see (ownership is checked before this). */
    async stream(request: FastifyRequest, reply: FastifyReply, first: InvestigationRow, after?: string) {
      const sse = openSse(request, reply, { heartbeatMs: deps.heartbeatMs });
      open.add(sse);
      const id = first.id;
      const given = parseCursor(after);
      const at: Cursor = given ?? { run: first.runCount, seq: 0, pseq: -1 };
      try {
        while (!sse.closed) {
          const row = await deps.repo.get(id);
          if (!row) break;
          if (row.runCount !== at.run) {
            at.run = row.runCount;
            at.seq = 0;
          }
          const findings = await deps.repo.findingsAfter(id, at.seq, PAGE);
          for (const f of findings) {
            at.seq = f.seq;
            await send(sse, cursorId(at), {
              type: 'anomaly',
              investigation_id: id,
              sample_data: row.sampleData,
              finding: findingBody(f),
            });
          }
          if (findings.length === PAGE) continue;
          if (row.progressSeq !== at.pseq) {
            at.pseq = row.progressSeq;
            await send(sse, cursorId(at), progressEvent(row));
          }
          // Findings are written before the terminal status, so after a terminal row all are sent.
          if (!isActive(row.status)) {
            await send(sse, cursorId(at), completionEvent(row));
            break;
          }
          await deps.hub.wait(id, deps.pollMs);
        }
      } catch (err) {
        request.log.warn({ err, investigationId: id }, 'investigation stream failed');
      } finally {
        open.delete(sse);
        sse.end();
      }
    },

    /** Ends every open stream (shutdown); clients reconnect elsewhere with their cursor. */
    closeAll() {
      for (const sse of open) sse.end();
      open.clear();
    },
  };
}

export type Streamer = ReturnType<typeof createStreamer>;
