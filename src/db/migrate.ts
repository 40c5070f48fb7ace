// The programmatic migrator: drizzle-kit's SQL files applied once, under a Postgres advisory lock.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { type MigrationMeta, readMigrationFiles } from 'drizzle-orm/migrator';
import type pg from 'pg';
import { type Db, type DbHandle, rowsOf } from './client.js';

// Any constant works; it only has to be the same for every instance of this app.
const MIGRATION_LOCK_KEY = 7_260_114_001;

/** The `migrations/` folder, found from this file whether it runs from src/ or dist/src/. */
export function migrationsFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'migrations');
    if (existsSync(join(candidate, 'meta', '_journal.json'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('migrations folder not found next to the app');
}

function readMigrations(folder = migrationsFolder()): MigrationMeta[] {
  return readMigrationFiles({ migrationsFolder: folder });
}

// Same bookkeeping table as drizzle-orm's own migrator, so drizzle-kit tools agree with us.
const ensureTable = sql`create table if not exists drizzle.__drizzle_migrations (
  id serial primary key, hash text not null, created_at bigint)`;

async function lastApplied(db: Pick<Db, 'execute'>): Promise<number> {
  const rows = rowsOf<{ created_at: string | number | null }>(
    await db.execute(
      sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`,
    ),
  );
  return rows[0]?.created_at == null ? 0 : Number(rows[0].created_at);
}

export interface MigrateResult {
  applied: number;
  total: number;
}

/**
 * Applies pending migrations in one transaction. The transaction-scoped advisory lock makes a
 * second migrator (another instance booting, a pre-deploy step) wait and then find nothing to do.
 */
export async function migrate(db: Db, folder?: string): Promise<MigrateResult> {
  const migrations = readMigrations(folder);
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.execute(sql`create schema if not exists drizzle`);
    await tx.execute(ensureTable);
    const last = await lastApplied(tx);
    let applied = 0;
    for (const m of migrations) {
      if (m.folderMillis <= last) continue;
      for (const statement of m.sql) {
        if (statement.trim()) await tx.execute(sql.raw(statement));
      }
      await tx.execute(
        sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${m.hash}, ${m.folderMillis})`,
      );
      applied++;
    }
    return { applied, total: migrations.length };
  });
}

/**
 * Runs `work` while holding the migration lock for the whole session, for schema that is not ours
 * to write as migrations (pg-boss installs and upgrades its own). Replicas booting together on an
 * empty database then create it one after the other instead of colliding in the catalog. The lock
 * lives on a dedicated connection, so `work` may use the pool freely; it must not call migrate()
 * (same key, another session: it would wait for us). PGlite has one process per folder (see
 * pglite-lock.ts), so there is nobody to wait for.
 */
export async function withMigrationLock<T>(handle: DbHandle, work: () => Promise<T>): Promise<T> {
  if (handle.kind !== 'postgres') return work();
  const pool = (handle.db as unknown as { $client: pg.Pool }).$client;
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    return await work();
  } finally {
    // A failed unlock means a broken connection, and the lock went with its session.
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {
      broken = true;
    });
    client.release(broken);
  }
}

/** How many of the code's migrations the database has not applied yet. */
export async function pendingMigrations(db: Db, folder?: string): Promise<number> {
  const migrations = readMigrations(folder);
  const exists = rowsOf<{ t: string | null }>(
    await db.execute(sql`select to_regclass('drizzle.__drizzle_migrations')::text as t`),
  );
  if (!exists[0]?.t) return migrations.length;
  const last = await lastApplied(db);
  return migrations.filter((m) => m.folderMillis > last).length;
}
