// Resolves the caller from `Authorization: Bearer <jwt>`: Supabase JWKS (ES256/RS256), legacy and app HS256 secrets.
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

export interface AuthUser {
  id: string;
  email: string | null;
  role: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    user: AuthUser | null;
  }
  interface FastifyContextConfig {
    /** false: the route checks its own bearer credential (e.g. /metrics), which is not a JWT. */
    verifyJwt?: boolean;
  }
}

export interface AuthDeps {
  config: Pick<
    Config,
    'SUPABASE_URL' | 'SUPABASE_JWT_SECRET' | 'JWT_SECRET' | 'AUTH_INVALID_TOKEN' | 'JWKS_TIMEOUT_MS'
  >;
}

const AUDIENCE = 'authenticated';
// Tolerates small clock skew between Supabase's auth server and this instance.
const CLOCK_TOLERANCE_S = 5;
// Three base64url segments; anything else is rejected before jose sees it.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const SCHEME = /^(\S+)(?:\s+(.*))?$/s;

/** A token we refuse; `reason` is safe to log (a code, never token material). */
class TokenRejected extends Error {
  override name = 'TokenRejected';
  constructor(readonly reason: string) {
    super(reason);
  }
}

type Verify = (token: string) => Promise<JWTPayload>;

const issuerOf = (supabaseUrl: string) => `${supabaseUrl.replace(/\/+$/, '')}/auth/v1`;

function createJwksVerifier(supabaseUrl: string, timeoutMs: number): Verify {
  const issuer = issuerOf(supabaseUrl);
  const remote = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`), {
    timeoutDuration: timeoutMs,
    cooldownDuration: 30_000,
    cacheMaxAge: 600_000,
  });
  const resolveKey: JWTVerifyGetKey = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      // The set answered but holds no such key: the token's fault, not the provider's.
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
        throw err;
      // Timeout, refused connection, non-200 or unparsable set: we cannot judge the token at all.
      const unavailable = new AppError('AUTH_UNAVAILABLE', undefined, undefined, { 'retry-after': '5' });
      unavailable.cause = err;
      throw unavailable;
    }
  };
  return async (token) => {
    const { payload } = await jwtVerify(token, resolveKey, {
      algorithms: ['ES256', 'RS256'],
      issuer,
      audience: AUDIENCE,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['exp', 'sub'],
    });
    return payload;
  };
}

function createSecretVerifier(secret: string, issuer: string | undefined): Verify {
  const key = new TextEncoder().encode(secret);
  return async (token) => {
    const { payload } = await jwtVerify(token, key, {
      algorithms: ['HS256'],
      issuer,
      audience: AUDIENCE,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['exp', 'sub'],
    });
    return payload;
  };
}

/** Builds the algorithm allow-list: each allowed `alg` maps to the verifiers tried in order. */
function createVerifiers(config: AuthDeps['config']): Map<string, Verify[]> {
  const byAlg = new Map<string, Verify[]>();
  if (config.SUPABASE_URL) {
    const jwks = createJwksVerifier(config.SUPABASE_URL, config.JWKS_TIMEOUT_MS);
    byAlg.set('ES256', [jwks]);
    byAlg.set('RS256', [jwks]);
  }
  const hs: Verify[] = [];
  if (config.SUPABASE_JWT_SECRET) {
    const issuer = config.SUPABASE_URL ? issuerOf(config.SUPABASE_URL) : undefined;
    hs.push(createSecretVerifier(config.SUPABASE_JWT_SECRET, issuer));
  }
  if (config.JWT_SECRET) hs.push(createSecretVerifier(config.JWT_SECRET, undefined));
  if (hs.length > 0) byAlg.set('HS256', hs);
  return byAlg;
}

/** Returns the token from an Authorization header value; throws TokenRejected if it is not a usable bearer token. */
function bearerToken(header: string): string {
  const match = SCHEME.exec(header.trim());
  if (!match || match[1]!.toLowerCase() !== 'bearer') throw new TokenRejected('not_bearer');
  const token = (match[2] ?? '').trim();
  if (!token) throw new TokenRejected('empty_token');
  if (!COMPACT_JWS.test(token)) throw new TokenRejected('malformed');
  return token;
}

async function verifyToken(token: string, verifiers: Map<string, Verify[]>): Promise<AuthUser> {
  const alg = decodeProtectedHeader(token).alg;
  const candidates = typeof alg === 'string' ? verifiers.get(alg) : undefined;
  if (!candidates) throw new TokenRejected('alg_not_allowed');
  let lastError: unknown;
  for (const verify of candidates) {
    try {
      return toUser(await verify(token));
    } catch (err) {
      // Any other failure means this key did sign the token, so it is the real reason to refuse.
      if (!(err instanceof errors.JWSSignatureVerificationFailed)) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

function toUser(payload: JWTPayload): AuthUser {
  if (typeof payload.sub !== 'string' || payload.sub === '') throw new TokenRejected('sub_invalid');
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
  return { id: payload.sub, email: str(payload.email), role: str(payload.role) };
}

/** A loggable description of why a token failed: codes and claim names only. */
function reasonOf(err: unknown): { reason: string; claim?: string } {
  if (err instanceof TokenRejected) return { reason: err.reason };
  if (err instanceof errors.JWTClaimValidationFailed) return { reason: err.code, claim: err.claim };
  if (err instanceof errors.JOSEError) return { reason: err.code };
  return { reason: err instanceof Error ? err.name : 'unknown' };
}

/** Why the key set could not be fetched; jose and fetch messages carry no token material. */
function unavailableCause(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { cause: String(err) };
  const code = (err as { code?: unknown }).code;
  const inner = err.cause instanceof Error ? (err.cause as Error & { code?: unknown }) : undefined;
  return { cause: err.message, code, network: inner?.code ?? inner?.message };
}

/** Verifies the bearer token of every request (an onRequest hook on the app that registers it). */
export const authPlugin = fp<AuthDeps>(
  async (app, deps) => {
    const { config } = deps;
    const verifiers = createVerifiers(config);
    const lenient = config.AUTH_INVALID_TOKEN === 'anonymous';

    // buildApp may declare the decorator itself so routes see `user` even before this hook runs.
    if (!app.hasRequestDecorator('user')) app.decorateRequest('user', null);
    const authenticate = async (request: FastifyRequest, header: string) => {
      try {
        request.user = await verifyToken(bearerToken(header), verifiers);
      } catch (err) {
        if (err instanceof AppError && err.code === 'AUTH_UNAVAILABLE') {
          request.log.warn(unavailableCause(err.cause), 'identity provider unavailable');
          throw err;
        }
        // A silent downgrade is how conversations were lost before; only the compatibility switch allows it.
        if (lenient) {
          request.log.warn(
            reasonOf(err),
            'invalid access token; continuing as anonymous (AUTH_INVALID_TOKEN)',
          );
          return;
        }
        request.log.debug(reasonOf(err), 'invalid access token');
        throw new AppError('INVALID_TOKEN');
      }
    };
    // A callback hook: most requests carry no token, and they pass without a promise.
    app.addHook('onRequest', (request, _reply, done) => {
      const header = request.headers.authorization;
      if (header === undefined || request.routeOptions.config?.verifyJwt === false) return done();
      authenticate(request, header).then(() => done(), done);
    });
  },
  { name: 'auth' },
);

/** Describes the configured verifiers for the boot log, e.g. "auth: supabase JWKS (https://x.supabase.co), HS256 app secret". */
export function describeAuth(config: AuthDeps['config']): string {
  const parts: string[] = [];
  if (config.SUPABASE_URL) parts.push(`supabase JWKS (${config.SUPABASE_URL})`);
  if (config.SUPABASE_JWT_SECRET) parts.push('HS256 supabase legacy secret');
  if (config.JWT_SECRET) parts.push('HS256 app secret');
  const verifiers =
    parts.length > 0 ? parts.join(', ') : 'no verifiers configured (no bearer token can be verified)';
  const mode =
    config.AUTH_INVALID_TOKEN === 'anonymous' ? '; invalid tokens continue as anonymous (compatibility)' : '';
  return `auth: ${verifiers}${mode}`;
}

/** The caller's user id, or null for an anonymous request. */
export function callerId(request: FastifyRequest): string | null {
  return request.user?.id ?? null;
}
