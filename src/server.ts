// Process entry: source maps and .env first, then the server itself (main.ts) loads.
import { prepareProcess } from './process-setup.js';

prepareProcess();
await import('./main.js');
