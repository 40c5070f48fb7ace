// Process entry: config → buildApp() → listen → graceful shutdown on SIGTERM/SIGINT.
import { ConfigError, loadConfig } from './config.js';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  // One readable line naming the bad variable, then a non-zero exit.
  process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`);
  process.exit(1);
}

// Loaded after the config is known good: a bad variable fails fast, before the whole app is imported.
const { buildApp, createLogger } = await import('./app.js');
const logger = createLogger(config);

let app: Awaited<ReturnType<typeof buildApp>>;
try {
  app = await buildApp({ config, logger });
  await app.listen({ port: config.PORT, host: config.HOST });
} catch (err) {
  logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'could not start');
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

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
