// Deployment as it happens: replicas booting together, one PGlite folder per process, bad folders, production guards.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { ConfigError, configSchema, loadConfig } from '../src/config.js';
import { testConfig } from './support/app.js';
import { backends, silentLogger } from './support/backends.js';
import { ensureBuilt, ROOT, type ServerProcess, startServer } from './support/server-process.js';

const started: ServerProcess[] = [];
const temps: string[] = [];
beforeAll(() => {
  ensureBuilt();
}, 180_000);
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop('SIGKILL')));
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

async function server(env: Record<string, string>, opts?: Parameters<typeof startServer>[1]) {
  const s = await startServer(env, opts);
  started.push(s);
  return s;
}
const tempDir = () => {
  const t = mkdtempSync(join(tmpdir(), 'deploy-test-'));
  temps.push(t);
  return t;
};
const lines = (text: string) => text.split('\n').filter((l) => l.trim());

describe.skipIf(!backends().databaseUrl)('replicas on Postgres', () => {
  const adminUrl = () => backends().databaseUrl!;
  const name = `t_boot_${randomBytes(4).toString('hex')}`;
  let url: string;
  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: adminUrl() });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const u = new URL(adminUrl());
    u.pathname = `/${name}`;
    url = u.toString();
  });
  afterAll(async () => {
    const admin = new pg.Client({ connectionString: adminUrl() });
    await admin.connect();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  });

  it('three instances started at the same instant on an empty database all become ready', async () => {
    const env = { DATABASE_URL: url, DATABASE_POOL_MAX: '5' };
    const three = await Promise.all([server(env), server(env), server(env)]);
    await Promise.all(three.map((s) => s.ready(240_000)));
    for (const s of three) {
      expect((await fetch(`${s.base}/health/ready`)).status).toBe(200);
      expect(s.stderr()).not.toMatch(/duplicate key|deadlock|already exists/);
    }
    // Both schemas exist once: ours (every migration recorded) and the job queue's, with its queues.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const journal = JSON.parse(readFileSync(join(ROOT, 'migrations', 'meta', '_journal.json'), 'utf8'));
      const applied = await c.query('select count(*)::int as n from drizzle.__drizzle_migrations');
      expect(applied.rows[0].n).toBe(journal.entries.length);
      const queues = await c.query('select name from pgboss.queue order by name');
      expect(queues.rows.map((r) => r.name)).toEqual(['investigations', 'investigations-dead']);
    } finally {
      await c.end();
    }
    // Each one serves: an investigation created on one is visible on the others.
    const created = await fetch(`${three[0]!.base}/api/v1/investigations/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'réplicas' }),
    });
    expect(created.status).toBe(202);
    const { investigation_id: id } = (await created.json()) as { investigation_id: string };
    for (const s of three.slice(1)) {
      expect((await fetch(`${s.base}/api/v1/investigations/${id}`)).status).toBe(200);
    }
  }, 300_000);
});

describe.skipIf(!backends().databaseUrl)('schema creation under one lock', () => {
  // In one process the three boots start within a millisecond of each other, a tighter race than
  // three processes loading their modules: without the lock this fails most rounds with
  // "duplicate key … pg_namespace_nspname_index" or "deadlock detected" from the job queue's schema.
  it('three apps built at the same instant on empty databases all come up, round after round', async () => {
    for (let round = 0; round < 3; round++) {
      const name = `t_boot_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ connectionString: backends().databaseUrl! });
      await admin.connect();
      await admin.query(`create database ${name}`);
      try {
        const u = new URL(backends().databaseUrl!);
        u.pathname = `/${name}`;
        const config = testConfig({ DATABASE_URL: u.toString(), DATABASE_POOL_MAX: '5' });
        const apps = await Promise.allSettled(
          [1, 2, 3].map(() => buildApp({ config, logger: silentLogger() })),
        );
        for (const a of apps) if (a.status === 'fulfilled') await a.value.close();
        expect(apps.map((a) => (a.status === 'rejected' ? String(a.reason) : 'up'))).toEqual([
          'up',
          'up',
          'up',
        ]);
      } finally {
        await admin.query(`drop database if exists ${name} with (force)`);
        await admin.end();
      }
    }
  }, 300_000);
});

describe('one PGlite folder, one process', () => {
  it('a second server on the folder exits 1 naming it; the first keeps serving its data', async () => {
    const dir = join(tempDir(), 'pglite');
    const first = await server({ PGLITE_DIR: dir });
    await first.ready(240_000);
    const created = await fetch(`${first.base}/api/v1/investigations/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'dono da pasta' }),
    });
    expect(created.status).toBe(202);
    const { investigation_id: id } = (await created.json()) as { investigation_id: string };
    const lock = JSON.parse(readFileSync(join(dir, 'cidadao-api.lock'), 'utf8'));
    expect(lock.pid).toBe(first.pid);

    const second = await server({ PGLITE_DIR: dir });
    expect(await second.exited).toBe(1);
    expect(lines(second.stderr())).toEqual([
      `PGLITE_DIR ${dir} is in use by another process (pid ${first.pid}): one folder serves one process; stop it, or set another PGLITE_DIR or DATABASE_URL`,
    ]);
    // The first never noticed: same data, still serving, still the owner.
    const r = await fetch(`${first.base}/api/v1/investigations/${id}`);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { query: string }).query).toBe('dono da pasta');
    expect(JSON.parse(readFileSync(join(dir, 'cidadao-api.lock'), 'utf8')).pid).toBe(first.pid);

    // A clean stop removes the lock; the next server opens the folder and finds the data.
    expect(await first.stop()).toBe(0);
    const third = await server({ PGLITE_DIR: dir });
    await third.ready(240_000);
    const again = await fetch(`${third.base}/api/v1/investigations/${id}`);
    expect(((await again.json()) as { query: string }).query).toBe('dono da pasta');
    await third.stop();
  }, 600_000);

  // A stopped server's folder, reused below to save a PGlite initdb (slow on a busy machine).
  let usedDir = '';
  it('takes over the lock of a process that died (kill -9)', async () => {
    const dir = join(tempDir(), 'pglite');
    const first = await server({ PGLITE_DIR: dir });
    await first.ready(240_000);
    await first.stop('SIGKILL');
    // The dead owner's lock is still there; the next server takes it over.
    expect(JSON.parse(readFileSync(join(dir, 'cidadao-api.lock'), 'utf8')).pid).toBe(first.pid);
    const next = await server({ PGLITE_DIR: dir });
    await next.ready(240_000);
    expect(JSON.parse(readFileSync(join(dir, 'cidadao-api.lock'), 'utf8')).pid).toBe(next.pid);
    expect(await next.stop()).toBe(0);
    usedDir = dir;
  }, 600_000);

  it('an unusable PGLITE_DIR is one line and exit 1, not a hang', async () => {
    const t = tempDir();
    writeFileSync(join(t, 'a-file'), 'x');
    const dir = join(t, 'a-file', 'pglite');
    const s = await server({ PGLITE_DIR: dir });
    expect(await s.exited).toBe(1);
    expect(lines(s.stderr())).toEqual([
      `PGLITE_DIR ${dir} is not a directory (or sits under a file): point PGLITE_DIR at a writable folder or set DATABASE_URL`,
    ]);
  }, 180_000);

  it('a corrupted PGLITE_DIR is one line and exit 1, not "Aborted()"', async () => {
    expect(usedDir).not.toBe('');
    const bad = join(tempDir(), 'pglite');
    cpSync(usedDir, bad, { recursive: true });
    writeFileSync(join(bad, 'global', 'pg_control'), randomBytes(64));
    const broken = await server({ PGLITE_DIR: bad });
    expect(await broken.exited).toBe(1);
    expect(lines(broken.stderr())).toEqual([
      `PGLITE_DIR ${bad} holds a database PGlite cannot open (corrupted, or written by another PGlite version): move it away to start empty, or restore it`,
    ]);
  }, 300_000);
});

describe('production refuses a throwaway database', () => {
  const refusal = (where: string) =>
    `invalid configuration: DATABASE_URL: required in production (${where}): set it to your Postgres, or set EMBEDDED=true to use the embedded PGlite in PGLITE_DIR on purpose`;

  it('NODE_ENV=production without DATABASE_URL: the server and the migrator exit 1 with one line', async () => {
    const dir = join(tempDir(), 'pglite');
    const s = await server({ NODE_ENV: 'production', PGLITE_DIR: dir });
    expect(await s.exited).toBe(1);
    expect(lines(s.stderr())).toEqual([refusal('NODE_ENV=production')]);
    const m = await server(
      { RAILWAY_ENVIRONMENT: 'production', PGLITE_DIR: dir },
      { entry: join(ROOT, 'dist', 'src', 'db', 'migrate-cli.js') },
    );
    expect(await m.exited).toBe(1);
    expect(lines(m.stderr())).toEqual([refusal('Railway (production)')]);
  }, 180_000);

  it('EMBEDDED=true asks for the embedded database on purpose; a DATABASE_URL needs nothing more', () => {
    expect(loadConfig({ NODE_ENV: 'production', EMBEDDED: 'true' }).EMBEDDED).toBe(true);
    expect(loadConfig({ RAILWAY_ENVIRONMENT: 'staging', EMBEDDED: '1' }).DATABASE_URL).toBeUndefined();
    expect(loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://db/x' }).EMBEDDED).toBe(false);
    expect(() => loadConfig({ RAILWAY_ENVIRONMENT: 'staging' })).toThrow(ConfigError);
    // Development and tests keep the embedded default.
    expect(loadConfig({}).DATABASE_URL).toBeUndefined();
  });
});

describe('configuration files', () => {
  it('.env.example lists every variable config.ts reads', () => {
    const text = readFileSync(join(ROOT, '.env.example'), 'utf8');
    const listed = new Set([...text.matchAll(/^# ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    expect(Object.keys(configSchema.shape).filter((k) => !listed.has(k))).toEqual([]);
  });

  it('the image and `npm start` give node the same flags, and this node accepts them', () => {
    const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    const argv = JSON.parse(cmd![1]!) as string[];
    expect(argv[0]).toBe('node');
    expect(argv.at(-1)).toBe('dist/src/server.js');
    const flags = argv.slice(1, -1);
    const start = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
    ).scripts.start;
    expect(start).toBe(['node', ...flags, 'scripts/start.mjs'].join(' '));
    // A flag this runtime does not know stops node before the server runs: "bad option".
    const run = spawnSync(
      process.execPath,
      [...flags, '-p', 'require("node:v8").getHeapStatistics().heap_size_limit'],
      {
        encoding: 'utf8',
      },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    // --max-semi-space-size=N: the heap limit counts three semi-spaces of N MiB.
    const semi = flags.find((f) => f.startsWith('--max-semi-space-size='));
    if (semi) {
      const plain = spawnSync(
        process.execPath,
        ['--max-semi-space-size=1', '-p', 'require("node:v8").getHeapStatistics().heap_size_limit'],
        {
          encoding: 'utf8',
        },
      );
      const mib = Number(semi.split('=')[1]);
      expect(Number(run.stdout) - Number(plain.stdout)).toBe(3 * (mib - 1) * 2 ** 20);
    }
  });

  it('a .env in the working directory is read, and the environment wins over it', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), `NODE_ENV=production\nPGLITE_DIR=${join(cwd, 'p')}\n`);
    const migrateCli = join(ROOT, 'dist', 'src', 'db', 'migrate-cli.js');
    const fromFile = await server({}, { entry: migrateCli, cwd });
    expect(await fromFile.exited).toBe(1);
    expect(fromFile.stderr()).toContain('required in production (NODE_ENV=production)');
    // The environment says test: the .env's production is ignored, so this is no refusal.
    const fromEnv = await server(
      { NODE_ENV: 'test', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' },
      { entry: migrateCli, cwd },
    );
    expect(await fromEnv.exited).toBe(1);
    expect(fromEnv.output()).toContain('migration failed');
    expect(fromEnv.output()).not.toContain('required in production');
  }, 180_000);
});
