import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createDb, rowsOf } from '../src/db/client.js';
import { migrate, migrationsFolder } from '../src/db/migrate.js';
import { createRedis } from '../src/plugins/redis.js';
import { createTestApp, testConfig } from './support/app.js';
import { backends, createTestDb, createTestRedis, silentLogger, type TestDb } from './support/backends.js';

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

let tdb: TestDb;
const redis = createTestRedis();
beforeAll(async () => {
  tdb = await createTestDb();
});
afterAll(async () => {
  await redis?.close();
  await tdb.drop();
});

describe('config', () => {
  it('names the bad variable in one line', () => {
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(/^invalid configuration: PORT: /);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x/y' })).toThrow(
      /DATABASE_URL: must start with postgres/,
    );
    expect(() => loadConfig({ GENERATION_ON_DISCONNECT: 'maybe' })).toThrow(/GENERATION_ON_DISCONNECT/);
    expect(() => loadConfig({ MIGRATE_ON_BOOT: 'perhaps' })).toThrow(/MIGRATE_ON_BOOT/);
    expect(() => loadConfig({ TRUST_PROXY: 'lots' })).toThrow(/TRUST_PROXY/);
    expect(loadConfig({ TRUST_PROXY: '2' }).TRUST_PROXY).toBe(2);
    expect(loadConfig({}).TRUST_PROXY).toBe(1);
  });

  it('applies the documented defaults and treats empty values as unset', () => {
    const c = loadConfig({ REDIS_URL: '', CORS_ORIGINS: 'https://a.example, https://b.example' });
    expect(c.PORT).toBe(3000);
    expect(c.HOST).toBe('::');
    expect(c.REDIS_URL).toBeUndefined();
    expect(c.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example']);
    expect(c.CHECKPOINT_MS).toBe(1000);
    expect(c.SSE_HEARTBEAT_MS).toBe(15000);
    expect(c.MIGRATE_ON_BOOT).toBe(true);
  });

  it('stops the server at boot with one readable line', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: { PATH: process.env.PATH, PORT: 'not-a-port' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/PORT/);
  });
});

describe('migrations', () => {
  it('applies each migration once when two migrators race', async () => {
    const fresh = await createTestDb();
    try {
      // createTestDb already migrated: drop the bookkeeping to race two migrators on an empty schema.
      for (const stmt of [
        'drop schema public cascade',
        'create schema public',
        'drop schema drizzle cascade',
      ]) {
        await fresh.handle.db.execute(sql.raw(stmt));
      }
      let second = fresh.handle;
      if (fresh.url) second = await createDb({ databaseUrl: fresh.url, poolMax: 2 });
      const results = await Promise.all([migrate(fresh.handle.db), migrate(second.db)]);
      if (second !== fresh.handle) await second.close();
      const applied = results.map((r) => r.applied).sort();
      expect(applied[0]).toBe(0);
      expect(applied[1]).toBe(results[0]!.total);
      const rows = rowsOf<{ n: number }>(
        await fresh.handle.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`),
      );
      expect(rows[0]!.n).toBe(results[0]!.total);
    } finally {
      await fresh.drop();
    }
  });

  it('refuses to serve a database whose migrations are behind the code', async () => {
    const fresh = await createTestDb();
    try {
      await fresh.handle.db.execute(sql`drop schema drizzle cascade`);
      await expect(
        buildApp({
          config: testConfig({ MIGRATE_ON_BOOT: 'false' }),
          db: fresh.handle,
          redis: null,
          logger: silentLogger(),
        }),
      ).rejects.toThrow(/behind the code .*npm run migrate/);
    } finally {
      await fresh.drop();
    }
  });

  it('ships its migrations next to the code', () => {
    expect(migrationsFolder()).toMatch(/migrations$/);
  });
});

describe('health', () => {
  it('answers liveness and readiness', async () => {
    const app = await createTestApp({ db: tdb.handle, redis });
    try {
      for (const url of ['/health', '/health/']) {
        const r = await app.inject({ url });
        expect(r.statusCode).toBe(200);
        expect(r.json()).toEqual({ status: 'ok' });
      }
      const ready = await app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json().checks.database).toBe('up');
      const root = await app.inject({ url: '/' });
      expect(root.json()).toMatchObject({ name: 'cidadao-api', links: { docs: '/docs' } });
      // Tools asking /docs for JSON get the OpenAPI document; people get the interactive page.
      const docs = await app.inject({ url: '/docs', headers: { accept: 'application/json' } });
      expect(docs.statusCode).toBe(200);
      expect(docs.json().paths['/api/v1/chat/stream'].post.operationId).toBe('streamChat');
      const html = await app.inject({ url: '/docs', headers: { accept: 'text/html' } });
      expect(html.headers['content-type']).toMatch(/text\/html/);
    } finally {
      await app.close();
    }
  });

  it('reports a stopped Redis as 503 naming it', async () => {
    const deadRedis = createRedis(`redis://127.0.0.1:${await closedPort()}`, 'x:', silentLogger());
    const app = await createTestApp({ db: tdb.handle, redis: deadRedis });
    try {
      const r = await app.inject({ url: '/health/ready' });
      expect(r.statusCode).toBe(503);
      expect(r.json().error.code).toBe('NOT_READY');
      expect(r.json().error.message).toMatch(/redis is down/);
      expect(r.json().error.details.checks).toMatchObject({ database: 'up', redis: 'down' });
    } finally {
      await app.close();
      await deadRedis.close();
    }
  });

  // The embedded database cannot become unreachable.
  it.skipIf(!backends().databaseUrl)('reports an unreachable Postgres as 503 naming it', async () => {
    const app = await createTestApp({ db: tdb.handle, redis: null });
    const dead = await createDb({
      databaseUrl: `postgres://postgres@127.0.0.1:${await closedPort()}/x`,
      poolMax: 1,
    });
    const probe = await buildApp({
      config: testConfig({ MIGRATE_ON_BOOT: 'false' }),
      db: { ...tdb.handle, ping: dead.ping },
      redis: null,
      logger: silentLogger(),
    });
    try {
      const r = await probe.inject({ url: '/health/ready' });
      expect(r.statusCode).toBe(503);
      expect(r.json().error.message).toMatch(/database is down/);
    } finally {
      await probe.close();
      await app.close();
      await dead.close();
    }
  });
});

describe('errors, CORS and request ids', () => {
  it('renders unknown routes in the error shape with CORS headers', async () => {
    const app = await createTestApp({ db: tdb.handle, redis });
    try {
      const r = await app.inject({ url: '/api/v1/nope', headers: { origin: 'http://localhost:3000' } });
      expect(r.statusCode).toBe(404);
      expect(r.headers['content-type']).toMatch(/application\/json/);
      expect(r.headers['access-control-allow-origin']).toBe('http://localhost:3000');
      const body = r.json();
      expect(body.error.code).toBe('ROUTE_NOT_FOUND');
      expect(typeof body.error.message).toBe('string');
      expect(body.request_id).toBe(r.headers['x-request-id']);
    } finally {
      await app.close();
    }
  });

  it('answers the browser preflight for authorization,content-type', async () => {
    const app = await createTestApp({ db: tdb.handle, redis });
    try {
      const r = await app.inject({
        method: 'OPTIONS',
        url: '/api/v1/chat/stream',
        headers: {
          origin: 'http://localhost:3000',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
      expect(r.statusCode).toBe(204);
      expect(r.headers['access-control-allow-origin']).toBe('http://localhost:3000');
      const allowed = String(r.headers['access-control-allow-headers'])
        .split(',')
        .map((s) => s.trim());
      expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type']));
      expect(String(r.headers['access-control-allow-methods'])).toMatch(/POST/);

      const foreign = await app.inject({
        method: 'OPTIONS',
        url: '/api/v1/chat/stream',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it('echoes the edge request id, preferring Railway’s', async () => {
    const app = await createTestApp({ db: tdb.handle, redis });
    try {
      const a = await app.inject({ url: '/health', headers: { 'x-request-id': 'abc-123' } });
      expect(a.headers['x-request-id']).toBe('abc-123');
      const b = await app.inject({
        url: '/health',
        headers: { 'x-request-id': 'abc-123', 'x-railway-request-id': 'rw-9' },
      });
      expect(b.headers['x-request-id']).toBe('rw-9');
      const c = await app.inject({ url: '/health', headers: { 'x-request-id': 'bad id with spaces' } });
      expect(c.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await app.close();
    }
  });

  it('never writes the Authorization header to a log line', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = pino({ level: 'trace', redact: ['req.headers.authorization'] }, sink);
    const app = await createTestApp({ db: tdb.handle, redis, logger, env: { LOG_LEVEL: 'trace' } });
    const token = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.s3cr3t-signature';
    try {
      for (const url of ['/', '/nope', '/api/v1/chat/sessions', '/api/v1/chat/stream']) {
        await app.inject({ url, headers: { authorization: `Bearer ${token}` } });
        await app.inject({
          method: 'POST',
          url,
          headers: { authorization: `Bearer ${token}` },
          payload: { message: 'oi' },
        });
      }
    } finally {
      await app.close();
    }
    expect(lines.length).toBeGreaterThan(4);
    for (const line of lines) {
      expect(line).not.toContain('s3cr3t-signature');
      expect(line).not.toContain('c2VjcmV0LXBheWxvYWQ');
    }
  });
});

describe('embedded database', () => {
  it('keeps data across a restart on disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pglite-'));
    try {
      const config = testConfig({ PGLITE_DIR: dir });
      const first = await buildApp({ config, redis: null, logger: silentLogger() });
      await first.infra.db.db.execute(
        sql`insert into chat_sessions (id, title) values ('persist-me', 'olá')`,
      );
      await first.close();
      const second = await buildApp({ config, redis: null, logger: silentLogger() });
      const rows = rowsOf<{ title: string }>(
        await second.infra.db.db.execute(sql`select title from chat_sessions where id = 'persist-me'`),
      );
      await second.close();
      expect(rows).toEqual([{ title: 'olá' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Two boots of embedded Postgres (WebAssembly) with migrations on disk: 25-30 s on a loaded
    // 2-core machine, so the default 30 s left no margin. The assertion does not depend on speed.
  }, 180_000);
});

// Keep the pg import used for type-only environments.
void pg;
