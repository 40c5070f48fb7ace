// createDb(config): node-postgres Pool when DATABASE_URL is set, embedded PGlite otherwise.
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { describePgliteOpenError, lockPgliteDir } from './pglite-lock.js';
import * as schema from './schema/index.js';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface DbHandle {
  db: Db;
  kind: 'postgres' | 'pglite';
  /** A human line for the boot log: what serves the database. */
  describe: string;
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * The reply writer's own path to the database (see generation/writer.ts): a small pool apart
   * from the request pool, so a burst of requests never makes a reply's final write wait for a
   * connection. Absent: the writer shares `db`, one statement at a time.
   */
  writer?: { db: Db; connections: number };
}

export interface DbOptions {
  databaseUrl?: string;
  pgliteDir?: string;
  poolMax?: number;
  /** Connections of the reply writer's pool (Postgres only); default 2. */
  writerConnections?: number;
  /** PGlite only: keep the database in memory (no directory). */
  inMemory?: boolean;
}

export async function createDb(opts: DbOptions): Promise<DbHandle> {
  if (opts.databaseUrl) {
    const { default: pg } = await import('pg');
    const { drizzle } = await import('drizzle-orm/node-postgres');
    const newPool = (max: number) => {
      const pool = new pg.Pool({
        connectionString: opts.databaseUrl,
        max,
        connectionTimeoutMillis: 5000,
        idleTimeoutMillis: 30_000,
      });
      // An idle client's socket error must not crash the process; the pool replaces it.
      pool.on('error', () => {});
      // Nor may a checked-out one's: the pool drops its own listener while a client is lent out, and
      // a server restart between two statements of a transaction would emit an unhandled 'error'.
      // The transaction still fails, on its next query ("not queryable"), and the client is discarded.
      pool.on('connect', (client) => client.on('error', () => {}));
      return pool;
    };
    const pool = newPool(opts.poolMax ?? 20);
    const writerConnections = opts.writerConnections ?? 2;
    // Created lazily by node-postgres: no connection is opened before the first reply is written.
    const writerPool = newPool(writerConnections);
    const db = drizzle(pool, { schema, casing: 'snake_case' }) as unknown as Db;
    const writerDb = drizzle(writerPool, { schema, casing: 'snake_case' }) as unknown as Db;
    const u = new URL(opts.databaseUrl);
    return {
      db,
      kind: 'postgres',
      describe: `postgres ${u.hostname}:${u.port || 5432}${u.pathname}`,
      ping: async () => {
        await db.execute(sql`select 1`);
      },
      close: async () => {
        await Promise.all([pool.end(), writerPool.end()]);
      },
      writer: { db: writerDb, connections: writerConnections },
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  let client: InstanceType<typeof PGlite>;
  let release = () => {};
  if (opts.inMemory) {
    client = new PGlite();
    await client.waitReady;
  } else {
    // Two processes on one folder would each keep their own copy and lose each other's writes.
    const dir = opts.pgliteDir ?? './.data/pglite';
    release = lockPgliteDir(dir);
    try {
      client = new PGlite(dir);
      await client.waitReady;
    } catch (err) {
      release();
      throw describePgliteOpenError(dir, err);
    }
  }
  const db = drizzle(client, { schema, casing: 'snake_case' }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    describe: opts.inMemory
      ? 'pglite (in memory)'
      : `pglite (embedded) in ${opts.pgliteDir ?? './.data/pglite'}`,
    // One connection, queries serialised by PGlite itself: the writer shares it, one statement at a time.
    writer: { db, connections: 1 },
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: async () => {
      try {
        await client.close();
      } finally {
        release();
      }
    },
  };
}

/** Rows of a raw `db.execute`, the same for node-postgres and PGlite. */
export function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}
