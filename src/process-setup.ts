// Process set-up shared by the entry points: source-mapped stack traces and a local .env file.
import { existsSync } from 'node:fs';

/**
 * Call before importing the application: only modules loaded after it get source-mapped stack
 * traces. A `.env` in the working directory fills in what the environment leaves unset (the
 * environment wins), like `node --env-file-if-exists=.env`, on every Node this app supports and
 * for every way it is launched (npm start, npm run dev, npm run migrate, the image).
 */
export function prepareProcess(envFile = '.env'): void {
  process.setSourceMapsEnabled(true);
  if (existsSync(envFile)) process.loadEnvFile(envFile);
}
