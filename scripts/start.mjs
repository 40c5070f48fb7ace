// `npm start`: compiles only when the sources changed since the last build, then runs the server
// in this process (server.js enables source maps and reads .env itself: see src/process-setup.ts).
import { pathToFileURL } from 'node:url';
import { buildIfStale, serverEntry } from './build-if-stale.mjs';

try {
  await buildIfStale();
} catch (err) {
  process.stderr.write(`npm start: ${err.message}\n`);
  process.exit(1);
}
await import(pathToFileURL(serverEntry).href);
