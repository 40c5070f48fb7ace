// Throwaway benchmark databases on the local Postgres: create + migrate, per-database write counters, drop.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDb } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';
import { sleep } from './stats.js';

export const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface DbCounters {
  xact_commit: number;
  xact_rollback: number;
  tup_inserted: number;
  tup_updated: number;
  tup_deleted: number;
  /** Rows written per table (schema.table), to tell the turn's own writes from background jobs. */
  tables: Record<string, { ins: number; upd: number; del: number }>;
}

export interface BenchDb {
  name: string;
  url: string;
  /** Applies the app's migrations (a no-op when up to date); the server boots with MIGRATE_ON_BOOT=false. */
  migrate(): Promise<void>;
  counters(): Promise<DbCounters>;
  /** Process ids of the Postgres backends currently connected to this database. */
  backendPids(): Promise<number[]>;
  /** Waits until no backend is connected to the database, so every backend flushed its statistics. */
  quiesce(timeoutMs?: number): Promise<void>;
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export function urlFor(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * A fresh database with the app's migrations applied by this process (not by the server), so the
 * counters read afterwards start from a known point: the migrator's backend has exited.
 */
export async function createBenchDb(label: string): Promise<BenchDb> {
  const name = `bench_${label}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await admin((c) => c.query(`create database ${name}`));
  const url = urlFor(name);
  const db: BenchDb = {
    name,
    url,
    async migrate() {
      const handle = await createDb({ databaseUrl: url, poolMax: 1 });
      try {
        await migrate(handle.db);
      } finally {
        await handle.close();
      }
      await db.quiesce();
    },
    async counters() {
      // Table statistics are only visible from inside the database; read them first, then let
      // that backend exit, so the database-wide counters below include its one commit.
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const { rows: tableRows } = await c.query(
        `select schemaname || '.' || relname as t, n_tup_ins as ins, n_tup_upd as upd, n_tup_del as del
         from pg_stat_user_tables`,
      );
      await c.end();
      await db.quiesce();
      return admin(async (a) => {
        const { rows } = await a.query(
          `select xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted
           from pg_stat_database where datname = $1`,
          [name],
        );
        const r = rows[0] ?? {};
        return {
          xact_commit: Number(r.xact_commit ?? 0),
          xact_rollback: Number(r.xact_rollback ?? 0),
          tup_inserted: Number(r.tup_inserted ?? 0),
          tup_updated: Number(r.tup_updated ?? 0),
          tup_deleted: Number(r.tup_deleted ?? 0),
          tables: Object.fromEntries(
            tableRows.map((t: Record<string, string>) => [
              t.t,
              { ins: Number(t.ins), upd: Number(t.upd), del: Number(t.del) },
            ]),
          ),
        };
      });
    },
    backendPids: () =>
      admin(async (c) => {
        const { rows } = await c.query('select pid from pg_stat_activity where datname = $1', [name]);
        return rows.map((r: { pid: number }) => r.pid);
      }),
    async quiesce(timeoutMs = 15_000) {
      // A backend flushes its pending statistics when it exits; live idle ones may hold them ~10 s.
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const n = await admin(async (c) => {
          const { rows } = await c.query(
            'select count(*)::int as n from pg_stat_activity where datname = $1',
            [name],
          );
          return rows[0].n as number;
        });
        if (n === 0) return;
        await sleep(100);
      }
    },
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
  await db.migrate();
  return db;
}

// The labels this benchmark creates databases under; other benchmarks' databases are never touched.
const LABELS = ['floor', 'ours', 'redis', 'queries', 'profile', 'profilefloor', 'counts', 'held'];

/** Drops databases a crashed earlier run of this benchmark left behind (older than an hour). */
export async function dropStaleBenchDbs(): Promise<string[]> {
  return admin(async (c) => {
    const { rows } = await c.query(
      `select datname from pg_database where datname ~ '^bench_(${LABELS.join('|')})_[0-9a-z]+_[0-9a-f]{6}$'`,
    );
    const stale: string[] = [];
    for (const { datname } of rows as Array<{ datname: string }>) {
      const stamp = Number.parseInt(datname.split('_').at(-2) ?? '', 36);
      if (Number.isFinite(stamp) && Date.now() - stamp > 3_600_000) {
        await c.query(`drop database if exists ${datname} with (force)`);
        stale.push(datname);
      }
    }
    return stale;
  });
}
