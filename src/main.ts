// The server process: config → buildApp() → listen → graceful shutdown on SIGTERM/SIGINT (entry: server.ts).
import { buildApp, createLogger } from './app.js';
import { loadConfig, StartupError } from './config.js';
import { raiseNofile } from './lib/descriptors.js';
import { findOutage, isOutage } from './lib/outage.js';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  // One readable line naming the bad variable, then a non-zero exit.
  process.stderr.write(`${err instanceof StartupError ? err.message : String(err)}\n`);
  process.exit(1);
}

const logger = createLogger(config);
// Before the app opens anything: the guard in admission works against the limit as raised.
raiseNofile(logger);

let app: Awaited<ReturnType<typeof buildApp>>;
try {
  app = await buildApp({ config, logger });
  await app.listen({ port: config.PORT, host: config.HOST });
} catch (err) {
  // An unusable PGLITE_DIR and the like: one line for the operator, not a log record.
  if (err instanceof StartupError) process.stderr.write(`${err.message}\n`);
  else logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'could not start');
  process.exit(1);
}

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal, grace_ms: config.SHUTDOWN_GRACE_MS }, 'shutting down: draining');
  // A hard deadline below Railway's drain window: whatever is still running is cut here.
  const deadline = setTimeout(() => {
    logger.error('shutdown deadline passed; exiting');
    process.exit(1);
  }, config.SHUTDOWN_GRACE_MS + 5000);
  deadline.unref();
  try {
    app.infra.startDraining();
    await app.close();
    logger.info('shutdown complete');
    process.exit(0);
  } catch (err) {
    logger.error({ err }, 'shutdown failed');
    process.exit(1);
  }
}

// pg-boss completes and fails jobs without awaiting the query: while Postgres restarts, that is a
// rejection nobody handles, and Node would exit on it. An outage is not a reason to die (the job's
// lease expires and another run finishes it); anything else still ends the process, logged.
process.on('unhandledRejection', (err) => {
  if (isOutage(err)) {
    logger.warn({ cause: findOutage(err) }, 'background query failed: dependency unavailable');
    return;
  }
  logger.fatal({ err }, 'unhandled rejection');
  process.exit(1);
});

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
