// The frontend's HTTP client as tests drive it (axios: JSON content type on every method), and the checks every page relies on.
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { type DbHandle, rowsOf } from '../../src/db/client.js';
import { signHS256 } from './jwt.js';

export const ORIGIN = 'http://localhost:3000';

/** axios as the frontend uses it: JSON content type and Accept on every method, an empty body when there is none. */
export function frontendClient(app: () => FastifyInstance, secret: string) {
  return async (
    method: 'GET' | 'POST' | 'DELETE' | 'PATCH',
    url: string,
    opts: { body?: unknown; user?: string } = {},
  ) => {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      origin: ORIGIN,
    };
    if (opts.user) headers.authorization = `Bearer ${await signHS256(secret, { sub: opts.user })}`;
    return app().inject({
      method,
      url,
      headers,
      payload: opts.body === undefined ? '' : JSON.stringify(opts.body),
    });
  };
}

export function dbHelpers(db: () => DbHandle) {
  const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await db().db.execute(query));
  const count = async (table: string) =>
    (await q<{ n: number }>(sql`select count(*)::int as n from ${sql.raw(table)}`))[0]!.n;
  return { q, count };
}

export async function until<T>(
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 25_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`condition not met in time: ${JSON.stringify(v).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
export const isoOrNull = (v: unknown) => v === null || (typeof v === 'string' && ISO.test(v));

/** The error envelope (API.md §7) with the CORS headers a browser needs to read it. */
export function expectEnvelope(
  r: { statusCode: number; headers: Record<string, unknown>; json(): any },
  status: number,
) {
  expect(r.statusCode).toBe(status);
  const body = r.json();
  expect(typeof body.error.code).toBe('string');
  expect(typeof body.error.message).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  expect(typeof body.request_id).toBe('string');
  expect(r.headers['access-control-allow-origin']).toBe(ORIGIN);
  return body;
}
