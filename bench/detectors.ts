// Benchmark (not a test): 100,000 synthetic contracts through all six detectors; time and peak RSS.
// Run: node --import tsx bench/detectors.ts [contracts=100000] [pageSize=1000]
import { performance } from 'node:perf_hooks';
import { createDetectorRun } from '../src/modules/investigations/detectors/index.js';
import { ANOMALY_TYPES } from '../src/modules/investigations/types.js';
import { syntheticPages } from './synthetic.js';

const total = Number(process.argv[2] ?? 100_000);
const pageSize = Number(process.argv[3] ?? 1000);

const startRss = process.memoryUsage().rss;

// Floor: the same pages generated and touched once (a sum), so the ratio isolates the detectors' cost.
let t0 = performance.now();
let checksum = 0;
for (const page of syntheticPages(total, pageSize))
  for (const c of page) checksum += c.valor_inicial + c.objeto.length;
const floorMs = performance.now() - t0;

t0 = performance.now();
const run = createDetectorRun(ANOMALY_TYPES);
let addMs = 0;
for (const page of syntheticPages(total, pageSize)) {
  const a = performance.now();
  run.add(page);
  addMs += performance.now() - a;
}
global.gc?.();
const heapAfterAdd = process.memoryUsage().heapUsed;
const stepMs: Record<string, number> = {};
const found: Record<string, number> = {};
for (const step of run.steps()) {
  const a = performance.now();
  const findings = step.run();
  stepMs[step.type] = Math.round(performance.now() - a);
  found[step.type] = findings.length;
}
const wallMs = performance.now() - t0;
const detectMs = addMs + Object.values(stepMs).reduce((s, v) => s + v, 0);

console.log(`contracts: ${run.recordsSeen} (page size ${pageSize}), checksum ${checksum.toExponential(3)}`);
console.log(`floor (generate + touch pages): ${floorMs.toFixed(0)} ms`);
console.log(`add(): ${addMs.toFixed(0)} ms; steps: ${JSON.stringify(stepMs)}`);
console.log(
  `detectors total (add + steps): ${detectMs.toFixed(0)} ms = ${(detectMs / floorMs).toFixed(2)}× floor`,
);
console.log(`wall incl. generation: ${wallMs.toFixed(0)} ms`);
console.log(`findings: ${JSON.stringify(found)}`);
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
console.log(`heap held after add() (run with --expose-gc for a settled figure): ${mib(heapAfterAdd)}`);
console.log(`RSS at start: ${mib(startRss)}; peak RSS: ${mib(process.resourceUsage().maxRSS * 1024)}`);
