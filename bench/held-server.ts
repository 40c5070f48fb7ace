// The app for the held-streams benchmark: the real buildApp. With LLM_BASE_URL set (bench/held.ts
// does), replies go to the slow model process over the real OpenAI-compatible client; without it,
// to a slow in-process model (a token every HELD_TOKEN_MS), which needs no upstream sockets.
import { setTimeout as delay } from 'node:timers/promises';
import { buildApp, createLogger } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import type { ModelEvent, ModelProvider, ModelRequest } from '../src/modules/llm/provider.js';

const tokenEveryMs = Number(process.env.HELD_TOKEN_MS ?? 30_000);

const slowModel: ModelProvider = {
  kind: 'openai-compatible',
  describe: `slow bench model (a token every ${tokenEveryMs} ms)`,
  modelFor: () => 'slow',
  async *stream(req: ModelRequest): AsyncIterable<ModelEvent> {
    yield { type: 'token', text: 'Olá, ' };
    for (let i = 0; i < 1000; i++) {
      // An aborted reply (stop, shutdown) ends here with the AbortError the producer expects.
      await delay(tokenEveryMs, undefined, { signal: req.signal });
      yield { type: 'token', text: `palavra${i} ` };
    }
    yield {
      type: 'done',
      finishReason: 'stop',
      usage: { prompt_tokens: 1, completion_tokens: 1000, estimated: true },
    };
  },
};

const config = loadConfig();
const logger = createLogger(config);
const app = await buildApp({ config, logger, ...(process.env.LLM_BASE_URL ? {} : { model: slowModel }) });
await app.listen({ port: config.PORT, host: config.HOST });

const shutdown = async () => {
  app.infra.startDraining();
  await app.close();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
