// Preloaded into a benchmarked server (`--import tsx --import ./bench/alloc-hook.ts`) by bench/allocs.ts:
// the first SIGUSR2 starts V8's sampling heap profiler (objects later collected included, so it
// samples allocation, not what is live), the second stops it and writes the profile to ALLOC_FILE.
// ALLOC_LIVE=1 samples only what is still live when it stops (in-flight turns, retained state);
// ALLOC_SURVIVORS=1 leaves out only what a scavenge collected: what survived the young generation
// (what scavenges copy and promote, the cost that grows with what a turn keeps), live or not.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const session = new Session();
session.connect();
let sampling = false;
// ALLOC_SKIP=N ignores the first N signals (bench/held.ts signals once for the idle snapshot, then
// at the start and the end of each window: ALLOC_SKIP=1 profiles the first level's window).
let skip = Number(process.env.ALLOC_SKIP ?? 0);

process.on('SIGUSR2', () => {
  if (skip > 0) {
    skip--;
    return;
  }
  if (!sampling) {
    sampling = true;
    session.post('HeapProfiler.startSampling', {
      samplingInterval: Number(process.env.ALLOC_INTERVAL ?? 4096),
      includeObjectsCollectedByMajorGC: process.env.ALLOC_LIVE !== '1',
      includeObjectsCollectedByMinorGC: process.env.ALLOC_LIVE !== '1' && process.env.ALLOC_SURVIVORS !== '1',
    });
    return;
  }
  sampling = false;
  session.post('HeapProfiler.stopSampling', (err, res) => {
    writeFileSync(
      process.env.ALLOC_FILE!,
      err ? JSON.stringify({ error: String(err) }) : JSON.stringify(res),
    );
  });
});
