// Named prepared statements for the hot path: Postgres parses and plans them once per connection.
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import pg from 'pg';
import type { Db } from './client.js';

const dialect = new PgDialect();

/**
 * Runs `query` as the named statement `name` on node-postgres (the text must be the same on every
 * call: only parameters vary); on PGlite, or any other driver, it is a plain `db.execute`.
 * A turn's two big statements spend more CPU in Postgres' parser and planner than in execution.
 */
export async function executeNamed(db: Db, name: string, query: SQL): Promise<{ rows: unknown[] }> {
  const client = (db as { $client?: unknown }).$client;
  if (client instanceof pg.Pool) {
    const { sql: text, params } = dialect.sqlToQuery(query);
    return client.query({ name, text, values: params as unknown[] });
  }
  return (await db.execute(query)) as unknown as { rows: unknown[] };
}
