// `npm run migrate`: applies migrations and exits (Railway's preDeployCommand runs this).
import pino from 'pino';
import { loadConfig, StartupError } from '../config.js';
import { prepareProcess } from '../process-setup.js';
import { createDb } from './client.js';
import { migrate } from './migrate.js';

prepareProcess();
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
  // Configuration and folder problems are one line for the operator, like the server's.
  if (err instanceof StartupError) process.stderr.write(`${err.message}\n`);
  else log.error({ err: err instanceof Error ? err.message : String(err) }, 'migration failed');
  process.exitCode = 1;
}
