// Process entry: source maps and .env first, a bad configuration refused before the app loads, then main.ts.
import { prepareProcess } from './process-setup.js';

prepareProcess();
// Imported after prepareProcess so they are source-mapped too.
const { loadConfig, StartupError } = await import('./config.js');
try {
  // Checked here too so a bad variable is one line within a second, not after loading every module.
  loadConfig();
} catch (err) {
  process.stderr.write(`${err instanceof StartupError ? err.message : String(err)}\n`);
  process.exit(1);
}
await import('./main.js');
