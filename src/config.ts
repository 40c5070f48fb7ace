// The only reader of process.env: one zod schema, parsed once, typed.
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const url = (protocols: string[]) =>
  z
    .string()
    .url()
    .refine((v) => protocols.some((p) => v.startsWith(`${p}:`)), {
      message: `must start with ${protocols.map((p) => `${p}://`).join(' or ')}`,
    });

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default('::'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  DATABASE_URL: url(['postgres', 'postgresql']).optional(),
  PGLITE_DIR: z.string().min(1).default('./.data/pglite'),
  DATABASE_POOL_MAX: int(1, 200).default(20),
  // The reply writer's own pool (checkpoints and final writes of every live reply, batched).
  DATABASE_WRITER_CONNECTIONS: int(1, 20).default(2),
  MIGRATE_ON_BOOT: bool.default(true),
  // Production without DATABASE_URL refuses to start (a PGlite inside a container is lost on the
  // next deploy) unless this says the embedded database is wanted.
  EMBEDDED: bool.default(false),
  // Set by Railway in every deployment: counts as production for the check above.
  RAILWAY_ENVIRONMENT: z.string().optional(),

  REDIS_URL: url(['redis', 'rediss']).optional(),
  REDIS_KEY_PREFIX: z.string().max(64).default('cidadao:'),

  CORS_ORIGINS: z
    .string()
    .default('http://localhost:3000')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),

  SUPABASE_URL: url(['http', 'https']).optional(),
  SUPABASE_JWT_SECRET: z.string().min(16).optional(),
  JWT_SECRET: z.string().min(16).optional(),
  AUTH_INVALID_TOKEN: z.enum(['reject', 'anonymous']).default('reject'),
  JWKS_TIMEOUT_MS: int(100, 60_000).default(5000),

  LLM_BASE_URL: url(['http', 'https']).default('https://api.openai.com/v1'),
  LLM_API_KEY: z.string().min(1).optional(),
  LLM_MODEL: z.string().min(1).default('gpt-4o-mini'),
  LLM_CONNECT_TIMEOUT_MS: int(100, 120_000).default(15_000),
  LLM_IDLE_TIMEOUT_MS: int(100, 600_000).default(60_000),
  LLM_MAX_TOKENS: int(16, 32_000).default(1024),
  // The provider speaks HTTP/2 (https: ALPN; http: h2c): live replies share connections.
  LLM_HTTP2: bool.default(false),
  // Models a client may ask for by name (Maritaca mode's `model`); empty: the operator's only.
  LLM_ALLOWED_MODELS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  LLM_AGENT_MODELS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      // "zumbi=model-a,anita=model-b": per-agent model overrides.
      const out: Record<string, string> = {};
      for (const pair of v.split(',').filter((s) => s.trim())) {
        const [k, m] = pair.split('=').map((s) => s.trim());
        if (!k || !m) {
          ctx.addIssue({ code: 'custom', message: `expected agent=model, got "${pair}"` });
          return z.NEVER;
        }
        out[k] = m;
      }
      return out;
    }),
  PROMPT_HISTORY_TOKENS: int(0, 200_000).default(3000),

  TRANSPARENCY_API_KEY: z.string().min(1).optional(),
  TRANSPARENCY_API_BASE_URL: url(['http', 'https']).default(
    'https://api.portaldatransparencia.gov.br/api-de-dados',
  ),

  CHAT_MAX_MESSAGE_CHARS: int(1, 1_000_000).default(8000),
  SSE_HEARTBEAT_MS: int(10, 600_000).default(15_000),
  CHECKPOINT_MS: int(10, 600_000).default(1000),
  GENERATION_ON_DISCONNECT: z.enum(['continue', 'cancel']).default('continue'),
  STREAM_LOG_MAXLEN: int(100, 1_000_000).default(10_000),
  STREAM_LOG_TTL_S: int(1, 7 * 24 * 3600).default(3600),
  PRODUCER_HEARTBEAT_MS: int(50, 600_000).default(5000),
  // Retries of a reply's final write while the database is unreachable; inside the shutdown margin.
  FINAL_WRITE_RETRY_MS: int(0, 600_000).default(4000),
  SWEEPER_INTERVAL_MS: int(50, 3_600_000).default(15_000),
  SESSION_RESTORE_DAYS: int(0, 3650).default(30),

  RATE_LIMIT_CHAT_PER_MINUTE: int(1, 100_000).default(20),
  RATE_LIMIT_READ_PER_MINUTE: int(1, 1_000_000).default(300),
  RATE_LIMIT_INVESTIGATIONS_PER_MINUTE: int(1, 100_000).default(10),
  // The investigation pages' status/results polling: its own class, apart from `read`.
  RATE_LIMIT_POLL_PER_MINUTE: int(1, 1_000_000).default(600),
  MAX_CONCURRENT_GENERATIONS: int(1, 1000).default(3),
  // New turns get 503 while fewer file descriptors than this remain under the soft nofile limit
  // (room for the database pool, Redis, followers and the model sockets of admitted replies).
  DESCRIPTOR_HEADROOM: int(0, 1_000_000).default(256),
  DAILY_TOKEN_BUDGET: int(0, 1_000_000_000).default(0),

  MEMORY_CONVERSATION_TTL_S: int(1, 365 * 24 * 3600).default(24 * 3600),
  MEMORY_EPISODIC_TTL_S: int(1, 365 * 24 * 3600).default(30 * 24 * 3600),

  INVESTIGATION_MAX_CONTRACTS: int(1, 10_000_000).default(100_000),
  // Contracts a run keeps in memory so its findings carry their data (the results page); past this,
  // findings name the rest by id only and the entity graph is fed page by page instead.
  INVESTIGATION_CONTRACTS_KEPT: int(1, 10_000_000).default(100_000),
  // A running job renews its lease every third of this; a job whose instance died is retried
  // elsewhere about this long (plus a third, plus the retry delay) after its last renewal.
  JOB_LEASE_SECONDS: int(3, 3600).default(30),

  // When set, GET /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`.
  METRICS_TOKEN: z.string().min(16).optional(),

  SHUTDOWN_GRACE_MS: int(0, 600_000).default(20_000),
  // How many proxies in front of us append to X-Forwarded-For (Railway's edge: 1). Trusting every
  // hop (`true`) would let a client pick its own address, and with it its rate-limit bucket.
  TRUST_PROXY: z
    .string()
    .default('1')
    .transform((v, ctx) => {
      if (v === 'true' || v === 'false') return v === 'true';
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 10) {
        ctx.addIssue({ code: 'custom', message: 'expected a hop count (0–10), true or false' });
        return z.NEVER;
      }
      return n;
    }),
});

export type Config = z.infer<typeof configSchema>;

/** Where the server would run on a throwaway embedded database by mistake, one line saying so. */
function embeddedInProduction(c: Config): string | null {
  const production = c.NODE_ENV === 'production' || c.RAILWAY_ENVIRONMENT !== undefined;
  if (!production || c.DATABASE_URL || c.EMBEDDED) return null;
  const where = c.NODE_ENV === 'production' ? 'NODE_ENV=production' : `Railway (${c.RAILWAY_ENVIRONMENT})`;
  return `required in production (${where}): set it to your Postgres, or set EMBEDDED=true to use the embedded PGlite in PGLITE_DIR on purpose`;
}

/** A reason not to start, written for the operator as one line (server.ts prints its message). */
export class StartupError extends Error {
  override name = 'StartupError';
}

export class ConfigError extends StartupError {
  override name = 'ConfigError';
}

/** Parses an environment; throws one readable line naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset": Railway and .env files often carry `FOO=`.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const embedded = embeddedInProduction(parsed.data);
  if (embedded) throw new ConfigError(`invalid configuration: DATABASE_URL: ${embedded}`);
  return parsed.data;
}
