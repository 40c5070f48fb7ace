// `npm run migrate`: applies migrations and exits (Railway's preDeployCommand runs this).
import pino from 'pino';
import { loadConfig } from '../config.js';
import { createDb } from './client.js';
import { migrate } from './migrate.js';

const log = pino({ name: 'migrate' });
try {
  const config = loadConfig();
  const handle = await createDb({
    databaseUrl: config.DATABASE_URL,
    pgliteDir: config.PGLITE_DIR,
    poolMax: 2,
  });
  try {
    const { applied, total } = await migrate(handle.db);
    log.info({ applied, total, database: handle.describe }, 'migrations up to date');
  } finally {
    await handle.close();
  }
} catch (err) {
  log.error({ err: err instanceof Error ? err.message : String(err) }, 'migration failed');
  process.exitCode = 1;
}
