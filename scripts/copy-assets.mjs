// Build step: copies the static files tsc does not emit (the playground's page, script and styles) into
// a build folder (dist/ by default). Shared by `npm run build` and the build-if-stale start.
import { cpSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ASSETS = ['src/modules/playground/public'];

/** Copies the static assets into `outDir` (an absolute path, or relative to the repo root). */
export function copyAssets(outDir = 'dist') {
  for (const dir of ASSETS) cpSync(join(root, dir), resolve(root, outDir, dir), { recursive: true });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) copyAssets(process.argv[2]);
