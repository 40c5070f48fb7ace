// Build step: copies the static files tsc does not emit (the playground's page, script and styles) into dist.
import { cpSync } from 'node:fs';

cpSync('src/modules/playground/public', 'dist/src/modules/playground/public', { recursive: true });
