// Tells a dependency outage (Postgres or Redis unreachable, restarting, failing over) from a bug.
//
// During a restart or a failover of Postgres or Redis, every query fails for a second or two with
// a connection error. That is not a fault of the request nor of our code: the client should retry,
// so the error handler answers 503 with Retry-After instead of a 500 (see errors.ts).

/** Socket-level failures: the server is not there, or went away mid-conversation. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Postgres SQLSTATEs that mean "the server cannot serve you right now": class 08 (connection
 * exception) by prefix, and these. 57P01 admin_shutdown is what a fast restart sends to every open
 * session; 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up or in recovery); 53300
 * too_many_connections; 25006 read_only_sql_transaction (a failover's old primary, now a replica).
 */
const PG_CODES = new Set(['57P01', '57P02', '57P03', '53300', '25006']);

/** Messages of node-postgres and ioredis that carry no code. */
const MESSAGES: RegExp[] = [
  // node-postgres: a session killed under a query, a pool that waited connectionTimeoutMillis.
  /^Connection terminated/,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error and is not queryable/,
  /^Client was closed and is not queryable/,
  // ioredis: the connection dropped, a command queued while offline, a command timeout.
  /^Connection is closed\.?$/,
  /Stream isn't writeable and enableOfflineQueue options is false/,
  /Reached the max retries per request limit/,
  /^Command timed out$/,
];

const REDIS_NAMES = new Set(['MaxRetriesPerRequestError']);

function matchesOne(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (SOCKET_CODES.has(code)) return true;
  if (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith('08') || PG_CODES.has(code))) return true;
  if (typeof e.name === 'string' && REDIS_NAMES.has(e.name)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return MESSAGES.some((re) => re.test(message));
}

/**
 * The error inside `err` that shows a dependency outage rather than a bug or a bad request (Drizzle's
 * query error keeps the driver's in `cause`; a refused connection to a host with several addresses
 * is an AggregateError), as a code and message safe to log (no SQL, no parameters); else null.
 */
export function findOutage(err: unknown, depth = 0): { code?: string; message: string } | null {
  if (depth > 5 || !err || typeof err !== 'object') return null;
  if (matchesOne(err)) {
    const { code, message } = err as { code?: unknown; message?: unknown };
    return { ...(typeof code === 'string' ? { code } : {}), message: String(message ?? '') };
  }
  const { cause, errors } = err as { cause?: unknown; errors?: unknown };
  const inCause = cause ? findOutage(cause, depth + 1) : null;
  if (inCause) return inCause;
  if (!Array.isArray(errors)) return null;
  for (const e of errors) {
    const found = findOutage(e, depth + 1);
    if (found) return found;
  }
  return null;
}

export const isOutage = (err: unknown): boolean => findOutage(err) !== null;

/** Seconds a client should wait before retrying after an outage: a fast restart takes 1–3 s. */
export const OUTAGE_RETRY_AFTER_S = 2;
