import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import type { Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, createLogger } from '../src/app.js';
import { describeAuth } from '../src/plugins/auth.js';
import { testConfig } from './support/app.js';
import { createTestDb, createTestRedis, silentLogger, type TestDb } from './support/backends.js';
import { type Jwks, signHS256, startJwks, unsignedToken } from './support/jwt.js';

const SUPABASE_SECRET = 'supabase-legacy-secret-0123456789abcdef';
const APP_SECRET = 'the-apps-own-secret-0123456789abcdef';
const USER = { sub: 'a1b2c3d4-0000-4000-8000-000000000001', email: 'ana@example.com' };

let tdb: TestDb;
let jwks: Jwks;
let app: FastifyInstance;
const redis = createTestRedis();
const opened: Array<{ close(): Promise<unknown> }> = [];

/** The real app (buildApp registers auth on the root) plus a route that echoes the resolved caller. */
async function authApp(env: Record<string, string> = {}, logger: Logger = silentLogger()) {
  const config = testConfig({
    SUPABASE_URL: jwks.url,
    SUPABASE_JWT_SECRET: SUPABASE_SECRET,
    JWT_SECRET: APP_SECRET,
    ...env,
  });
  const instance = await buildApp({ config, db: tdb.handle, redis, logger });
  instance.get('/whoami', async (request) => ({ user: request.user }));
  await instance.ready();
  opened.push(instance);
  return instance;
}

async function jwksServer() {
  const server = await startJwks();
  opened.push(server);
  return server;
}

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, logger: createLogger(testConfig({ LOG_LEVEL: 'trace' }), sink) };
}

const whoami = (target: FastifyInstance, authorization?: string) =>
  target.inject({ url: '/whoami', headers: authorization === undefined ? {} : { authorization } });

async function expectInvalid(target: FastifyInstance, authorization: string) {
  const r = await whoami(target, authorization);
  expect(r.statusCode, authorization.slice(0, 20)).toBe(401);
  expect(r.json().error.code).toBe('INVALID_TOKEN');
  expect(r.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
}

const expired = () => ({
  ...USER,
  iat: Math.floor(Date.now() / 1000) - 7200,
  exp: Math.floor(Date.now() / 1000) - 60,
});

beforeAll(async () => {
  tdb = await createTestDb();
  jwks = await jwksServer();
  app = await authApp();
});
afterAll(async () => {
  for (const o of opened.reverse()) await o.close();
  await redis?.close();
  await tdb.drop();
});

describe('who the caller is', () => {
  it('is anonymous without an Authorization header', async () => {
    const r = await whoami(app);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ user: null });
  });

  it('accepts the legacy Supabase HS256 secret, with its issuer', async () => {
    const token = await signHS256(SUPABASE_SECRET, { ...USER, iss: jwks.issuer });
    const r = await whoami(app, `Bearer ${token}`);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ user: { id: USER.sub, email: USER.email, role: 'authenticated' } });
  });

  it("accepts the app's own HS256 secret without an issuer", async () => {
    const token = await signHS256(APP_SECRET, { sub: 'app-user-7', email: undefined, role: undefined });
    const r = await whoami(app, `Bearer ${token}`);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ user: { id: 'app-user-7', email: null, role: null } });
  });

  it('accepts ES256 and RS256 tokens through the JWKS, fetching the key set once', async () => {
    const fresh = await jwksServer();
    const target = await authApp({ SUPABASE_URL: fresh.url });
    for (let i = 0; i < 3; i++) {
      for (const token of [await fresh.signES256(USER), await fresh.signRS256({ ...USER, role: 'admin' })]) {
        const r = await whoami(target, `Bearer ${token}`);
        expect(r.statusCode).toBe(200);
        expect(r.json().user.id).toBe(USER.sub);
      }
    }
    expect(
      (await whoami(target, `Bearer ${await fresh.signRS256({ ...USER, role: 'admin' })}`)).json().user,
    ).toEqual({ id: USER.sub, email: USER.email, role: 'admin' });
    expect(fresh.fetches()).toBe(1);
  });

  it('takes the scheme in any case and tolerates extra spaces before the token', async () => {
    const token = await jwks.signES256(USER);
    for (const header of [
      `bearer ${token}`,
      `BEARER ${token}`,
      `Bearer    ${token}`,
      `Bearer \t ${token} `,
    ]) {
      const r = await whoami(app, header);
      expect(r.statusCode).toBe(200);
      expect(r.json().user.id).toBe(USER.sub);
    }
  });
});

describe('invalid tokens are 401, never anonymous', () => {
  it('answers the JSON error shape with WWW-Authenticate and CORS, without echoing the token', async () => {
    const token = await jwks.signES256(expired());
    const r = await app.inject({
      url: '/whoami',
      headers: { authorization: `Bearer ${token}`, origin: 'http://localhost:3000' },
    });
    expect(r.statusCode).toBe(401);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(r.headers['access-control-allow-origin']).toBe('http://localhost:3000');
    expect(r.json()).toEqual({
      error: { code: 'INVALID_TOKEN', message: expect.any(String) },
      detail: expect.any(String),
      request_id: r.headers['x-request-id'],
    });
    expect(r.body).not.toContain(token.split('.')[2]);
  });

  it('rejects expired tokens', async () => {
    await expectInvalid(app, `Bearer ${await jwks.signES256(expired())}`);
    await expectInvalid(
      app,
      `Bearer ${await signHS256(SUPABASE_SECRET, { ...expired(), iss: jwks.issuer })}`,
    );
    await expectInvalid(app, `Bearer ${await signHS256(APP_SECRET, expired())}`);
    await expectInvalid(app, `Bearer ${await signHS256(APP_SECRET, { ...USER, exp: undefined })}`);
  });

  it('rejects a wrong audience', async () => {
    await expectInvalid(app, `Bearer ${await jwks.signES256({ ...USER, aud: 'anon' })}`);
    await expectInvalid(app, `Bearer ${await signHS256(APP_SECRET, { ...USER, aud: 'service_role' })}`);
    await expectInvalid(app, `Bearer ${await signHS256(APP_SECRET, { ...USER, aud: undefined })}`);
  });

  it('rejects a wrong issuer', async () => {
    await expectInvalid(
      app,
      `Bearer ${await jwks.signES256({ ...USER, iss: 'https://evil.example/auth/v1' })}`,
    );
    await expectInvalid(app, `Bearer ${await jwks.signRS256({ ...USER, iss: undefined })}`);
    await expectInvalid(
      app,
      `Bearer ${await signHS256(SUPABASE_SECRET, { ...USER, iss: 'https://evil.example/auth/v1' })}`,
    );
  });

  it('rejects a wrong signature', async () => {
    await expectInvalid(app, `Bearer ${await signHS256('someone-elses-secret-0123456789', USER)}`);
    const [header, , signature] = (await jwks.signES256(USER)).split('.');
    const [, forgedPayload] = (await jwks.signES256({ ...USER, sub: 'someone-else' })).split('.');
    await expectInvalid(app, `Bearer ${header}.${forgedPayload}.${signature}`);
  });

  it('rejects alg none and algorithms outside the allow-list', async () => {
    await expectInvalid(app, `Bearer ${unsignedToken(USER)}`);
    const hs512 = await new SignJWT({ ...USER, aud: 'authenticated' })
      .setProtectedHeader({ alg: 'HS512' })
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(APP_SECRET));
    await expectInvalid(app, `Bearer ${hs512}`);
  });

  it('rejects an unknown kid as 401, not as an outage', async () => {
    await expectInvalid(app, `Bearer ${await jwks.signES256(USER, { kid: 'rotated-away' })}`);
  });

  it('rejects a missing or non-string sub', async () => {
    await expectInvalid(app, `Bearer ${await jwks.signES256({ email: USER.email })}`);
    await expectInvalid(app, `Bearer ${await signHS256(APP_SECRET, { sub: '' })}`);
    await expectInvalid(app, `Bearer ${await signHS256(APP_SECRET, { sub: 42 })}`);
  });

  it('rejects other schemes, empty tokens and garbage', async () => {
    const token = await jwks.signES256(USER);
    for (const header of [
      `Basic ${token}`,
      `Token ${token}`,
      'Bearer',
      'Bearer    ',
      '',
      'Bearer null',
      'Bearer a.b',
    ]) {
      await expectInvalid(app, header);
    }
  });

  it('rejects tokens whose verifier is not configured', async () => {
    const bare = await authApp({ SUPABASE_URL: '', SUPABASE_JWT_SECRET: '', JWT_SECRET: '' });
    await expectInvalid(bare, `Bearer ${await jwks.signES256(USER)}`);
    await expectInvalid(bare, `Bearer ${await signHS256(APP_SECRET, USER)}`);
    expect((await whoami(bare)).json()).toEqual({ user: null });
  });
});

describe('when the identity provider is unreachable', () => {
  it('answers 503 AUTH_UNAVAILABLE on a JWKS timeout, and recovers', async () => {
    const slow = await jwksServer();
    const target = await authApp({ SUPABASE_URL: slow.url, JWKS_TIMEOUT_MS: '300' });
    slow.hang(true);
    const started = Date.now();
    const r = await whoami(target, `Bearer ${await slow.signES256(USER)}`);
    // Generous: the point is that the 300 ms timeout applies, not the 5 s default.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(r.statusCode).toBe(503);
    expect(r.json().error.code).toBe('AUTH_UNAVAILABLE');
    expect(r.headers['retry-after']).toBeDefined();
    expect(r.headers['www-authenticate']).toBeUndefined();

    slow.hang(false);
    const again = await whoami(target, `Bearer ${await slow.signES256(USER)}`);
    expect(again.statusCode).toBe(200);
    expect(again.json().user.id).toBe(USER.sub);
  });

  it('answers 503 when the JWKS endpoint fails or is down', async () => {
    const flaky = await jwksServer();
    const target = await authApp({ SUPABASE_URL: flaky.url });
    flaky.failWith(502);
    const failing = await whoami(target, `Bearer ${await flaky.signES256(USER)}`);
    expect(failing.statusCode).toBe(503);
    expect(failing.json().error.code).toBe('AUTH_UNAVAILABLE');

    const token = await flaky.signRS256(USER);
    await flaky.close();
    const down = await whoami(target, `Bearer ${token}`);
    expect(down.statusCode).toBe(503);
    expect(down.json().error.code).toBe('AUTH_UNAVAILABLE');
    // HS256 tokens do not depend on the JWKS.
    expect((await whoami(target, `Bearer ${await signHS256(APP_SECRET, USER)}`)).statusCode).toBe(200);
  });
});

describe('AUTH_INVALID_TOKEN=anonymous', () => {
  it('continues as anonymous with a warning, still verifies good tokens, and still reports outages', async () => {
    const { lines, logger } = capture();
    const target = await authApp({ AUTH_INVALID_TOKEN: 'anonymous' }, logger);
    const bad = [
      await jwks.signES256(expired()),
      // Signed by the legacy secret but expired: the reason must be the expiry, not the app secret's mismatch.
      await signHS256(SUPABASE_SECRET, { ...expired(), iss: jwks.issuer }),
    ];
    for (const token of bad) {
      const r = await whoami(target, `Bearer ${token}`);
      expect(r.statusCode).toBe(200);
      expect(r.json()).toEqual({ user: null });
    }
    const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.level === 40);
    expect(warnings.map((w) => [w.msg, w.reason])).toEqual([
      ['invalid access token; continuing as anonymous (AUTH_INVALID_TOKEN)', 'ERR_JWT_EXPIRED'],
      ['invalid access token; continuing as anonymous (AUTH_INVALID_TOKEN)', 'ERR_JWT_EXPIRED'],
    ]);
    for (const token of bad) expect(lines.join('')).not.toContain(token.split('.')[2]);

    const good = await whoami(target, `Bearer ${await jwks.signES256(USER)}`);
    expect(good.json().user.id).toBe(USER.sub);

    const gone = await jwksServer();
    await gone.close();
    const outage = await authApp({ AUTH_INVALID_TOKEN: 'anonymous', SUPABASE_URL: gone.url });
    expect((await whoami(outage, `Bearer ${await jwks.signES256(USER)}`)).statusCode).toBe(503);
  });
});

describe('token hygiene', () => {
  it('never writes a token or its parts to any log line, on any path', async () => {
    const { lines, logger } = capture();
    const flaky = await jwksServer();
    const target = await authApp({ SUPABASE_URL: flaky.url, LOG_LEVEL: 'trace' }, logger);
    const tokens = [
      await flaky.signES256(USER),
      await flaky.signES256(expired()),
      await flaky.signRS256({ ...USER, aud: 'anon' }),
      await flaky.signES256(USER, { kid: 'unknown' }),
      await signHS256('someone-elses-secret-0123456789', USER),
      unsignedToken(USER),
    ];
    const statuses: number[] = [];
    for (const token of tokens) {
      statuses.push((await whoami(target, `Bearer ${token}`)).statusCode);
      statuses.push((await whoami(target, `Basic ${token}`)).statusCode);
    }
    await flaky.close();
    const down = await (await authApp({ SUPABASE_URL: flaky.url, LOG_LEVEL: 'trace' }, logger)).inject({
      url: '/whoami',
      headers: { authorization: `Bearer ${tokens[0]}` },
    });
    statuses.push(down.statusCode);

    expect(statuses).toEqual([200, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 503]);
    expect(lines.some((l) => l.includes('invalid access token'))).toBe(true);
    expect(lines.some((l) => l.includes('identity provider unavailable'))).toBe(true);
    for (const token of tokens) {
      const [, payload, signature] = token.split('.');
      for (const line of lines) {
        expect(line).not.toContain(token);
        expect(line).not.toContain(payload);
        if (signature) expect(line).not.toContain(signature);
      }
    }
  });
});

describe('describeAuth', () => {
  it('names each configured verifier for the boot log', () => {
    const config = testConfig({ SUPABASE_URL: 'https://x.supabase.co', JWT_SECRET: APP_SECRET });
    expect(describeAuth(config)).toBe('auth: supabase JWKS (https://x.supabase.co), HS256 app secret');
    expect(
      describeAuth(testConfig({ AUTH_INVALID_TOKEN: 'anonymous', SUPABASE_JWT_SECRET: SUPABASE_SECRET })),
    ).toMatch(/^auth: HS256 supabase legacy secret; invalid tokens continue as anonymous/);
    expect(describeAuth(testConfig())).toMatch(/no verifiers configured/);
  });
});
