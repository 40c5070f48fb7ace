// `npm start`: two starts in one folder build once and both serve; a start with nothing to build is quick.
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, createTestDb, type TestDb } from './support/backends.js';
import { ROOT, type ServerProcess, startServer } from './support/server-process.js';

// A copy of the project (sources, no dist/) sharing node_modules: a fresh clone after `npm ci`.
let clone: string;
let tdb: TestDb | null = null;
const servers: ServerProcess[] = [];
beforeAll(async () => {
  clone = mkdtempSync(join(tmpdir(), 'start-test-'));
  for (const f of ['src', 'scripts', 'migrations', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) {
    cpSync(join(ROOT, f), join(clone, f), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
  if (backends().databaseUrl) tdb = await createTestDb();
}, 120_000);
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
  await tdb?.drop();
  rmSync(clone, { recursive: true, force: true });
});

/** What `npm start` runs, in the clone, on the test database (or a PGlite folder of its own). */
async function start(name: string) {
  const env: Record<string, string> = tdb?.url
    ? { DATABASE_URL: tdb.url, DATABASE_POOL_MAX: '5', MIGRATE_ON_BOOT: 'false' }
    : { PGLITE_DIR: join(clone, `.data-${name}`) };
  const s = await startServer(env, { entry: join(clone, 'scripts', 'start.mjs'), cwd: clone });
  servers.push(s);
  return s;
}
const compiles = (s: ServerProcess) => s.stderr().split('compiling to dist/').length - 1;

describe('npm start', () => {
  it('two starts at once on a fresh clone: one build, both serve, nothing half-written', async () => {
    const [a, b] = await Promise.all([start('a'), start('b')]);
    await Promise.all([a.ready(240_000), b.ready(240_000)]);
    expect(compiles(a) + compiles(b)).toBe(1);
    expect(a.stderr() + b.stderr()).not.toMatch(
      /SyntaxError|does not provide an export|ERR_MODULE_NOT_FOUND/,
    );
    expect(readFileSync(join(clone, 'dist', '.build-stamp'), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    await Promise.all([a.stop(), b.stop()]);

    // Nothing changed: no build, straight to the server.
    const t0 = Date.now();
    const c = await start('a');
    await c.ready(120_000);
    const readyS = (Date.now() - t0) / 1000;
    process.stderr.write(`[start] second npm start ready in ${readyS.toFixed(1)} s\n`);
    expect(compiles(c)).toBe(0);
    expect(await c.stop()).toBe(0);
  }, 400_000);
});
