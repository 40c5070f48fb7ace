// Builds the app the way server.ts does, over the test backends, with a config from overrides.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type AppDeps, buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import type { DbHandle } from '../../src/db/client.js';
import type { RedisHandle } from '../../src/plugins/redis.js';
import { silentLogger } from './backends.js';

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', NODE_ENV: 'test', ...env });
}

export interface TestAppOptions extends Partial<Omit<AppDeps, 'config'>> {
  env?: Record<string, string>;
  db: DbHandle;
  redis: RedisHandle | null;
  logger?: Logger;
}

export async function createTestApp(opts: TestAppOptions): Promise<FastifyInstance> {
  const { env, ...deps } = opts;
  const app = await buildApp({ ...deps, config: testConfig(env), logger: opts.logger ?? silentLogger() });
  await app.ready();
  return app;
}

/** A test app listening on a free port of 127.0.0.1, with its base URL. */
export async function listenTestApp(opts: TestAppOptions): Promise<{ app: FastifyInstance; base: string }> {
  const app = await createTestApp(opts);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, base: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` };
}
