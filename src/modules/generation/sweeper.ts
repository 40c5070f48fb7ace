// Marks replies whose producer stopped heart-beating (a crashed instance) as interrupted.
import type { Logger } from 'pino';
import type { Db } from '../../db/client.js';
import { type RecoverText, sweepOrphans } from './generation.repo.js';

export interface SweeperOptions {
  db: Db;
  intervalMs: number;
  /** A row is orphaned when its heartbeat is older than this. */
  staleAfterMs: number;
  log: Pick<Logger, 'warn' | 'info'>;
  /** Reads a dead producer's unstored tail from the shared log (Redis); null without one. */
  recover?: RecoverText | null;
}

export function startSweeper(opts: SweeperOptions): { stop(): void } {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const ids = await sweepOrphans(opts.db, opts.staleAfterMs, opts.recover ?? null);
      if (ids.length)
        opts.log.info(
          { count: ids.length, messageIds: ids.slice(0, 20) },
          'orphaned replies marked interrupted',
        );
    } catch (err) {
      opts.log.warn({ err: (err as Error).message }, 'sweeper run failed');
    } finally {
      running = false;
    }
  }, opts.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
