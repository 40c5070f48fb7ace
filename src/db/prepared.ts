// Named prepared statements for the hot path: Postgres parses and plans them once per connection.
import { is, Placeholder, type SQL, sql } from 'drizzle-orm';
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

/**
 * A named statement whose text is rendered once: `build` receives one placeholder per key of the
 * values and returns the statement; each call only binds values. Rendering a large `sql` template
 * per call (a few kilobytes of text assembled from its pieces) cost a turn more CPU and garbage
 * than sending it. Other drivers (PGlite, a transaction) get the statement built with the values.
 */
export function namedStatement<K extends string>(
  name: string,
  keys: readonly K[],
  build: (v: Record<K, unknown>) => SQL,
): (db: Db, values: Record<K, unknown>) => Promise<{ rows: unknown[] }> {
  // Each bind parameter is a key of the values or a constant of the text.
  let rendered: { text: string; params: Array<{ key: K } | { value: unknown }> } | null = null;
  return async (db, values) => {
    const client = (db as { $client?: unknown }).$client;
    if (client instanceof pg.Pool) {
      if (!rendered) {
        const placeholders = Object.fromEntries(keys.map((k) => [k, sql.placeholder(k)])) as Record<
          K,
          unknown
        >;
        const q = dialect.sqlToQuery(build(placeholders));
        const params = q.params.map((p) => (is(p, Placeholder) ? { key: p.name as K } : { value: p }));
        rendered = { text: q.sql, params };
      }
      const bound = rendered.params.map((p) => ('key' in p ? values[p.key] : p.value));
      return client.query({ name, text: rendered.text, values: bound });
    }
    return (await db.execute(build(values))) as unknown as { rows: unknown[] };
  };
}
