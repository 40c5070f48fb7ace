// Where a streamed turn's allocation goes: V8's sampling heap profiler (collected objects included)
// over N turns of `ours+redis` (shared Redis, a bench prefix), bytes per turn by function (self).
// Run: npm run build && node --import tsx bench/allocs.ts [turns=3000] [concurrency=16]
// BENCH_SERVER_JS=<dir>/dist/src/server.js profiles another build. Sampled, so ±10% per row;
// bench/counts.ts gives the exact total (server KB allocated/turn). ALLOC_LIVE=1: only what was
// allocated during the turns and is still live at the end (per turn: divide by turns, not meaningful).
// ALLOC_SURVIVORS=1: only what survived a scavenge (promoted, or live at the stop): what the young
// generation copies, by the function that allocated it.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from './client.js';
import { createBenchDb } from './pgadmin.js';
import { fmt, sleep, table } from './stats.js';
import { checkTurn, dropRedisPrefix, ROOT, startOurs, TURN_BODY } from './targets.js';

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

const turns = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 16);
const serverJs = process.env.BENCH_SERVER_JS ?? join(ROOT, 'dist/src/server.js');
const file = join(tmpdir(), `bench-allocs-${process.pid}.json`);
const prefix = `bench:allocs:${process.pid}:`;
const db = await createBenchDb('allocs');
try {
  const child = await startOurs({
    db,
    serverJs,
    redisPrefix: prefix,
    nodeFlags: ['--import', 'tsx', '--import', join(ROOT, 'bench/alloc-hook.ts')],
    env: {
      ALLOC_FILE: file,
      ALLOC_LIVE: process.env.ALLOC_LIVE ?? '0',
      ALLOC_SURVIVORS: process.env.ALLOC_SURVIVORS ?? '0',
    },
  });
  try {
    await checkTurn(child.base);
    await runLoad({ base: child.base, body: TURN_BODY, concurrency, turns: Math.min(2000, turns) });
    process.kill(child.pid, 'SIGUSR2');
    await sleep(100);
    const live = process.env.ALLOC_LIVE === '1';
    const running = runLoad({ base: child.base, body: TURN_BODY, concurrency, turns });
    // Live mode stops mid-load, so in-flight turns are in the sample.
    if (live) await sleep(Number(process.env.ALLOC_LIVE_AFTER_MS ?? 2000));
    else await running;
    await sleep(live ? 0 : 200);
    process.kill(child.pid, 'SIGUSR2');
    const load = await running;
    for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(50);
    const { profile } = JSON.parse(readFileSync(file, 'utf8')) as { profile: { head: SampleNode } };
    const bySite = new Map<string, number>();
    const byArea = new Map<string, number>();
    let total = 0;
    const walk = (n: SampleNode) => {
      if (n.selfSize > 0) {
        const { functionName, url, lineNumber } = n.callFrame;
        const where = url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '');
        const site = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
        bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
        const area =
          /node_modules\/(@[^/]+\/[^/]+|[^/]+)/.exec(where)?.[1] ??
          (where.startsWith('dist/src/')
            ? where.replace(/^dist\/src\//, '')
            : where.startsWith('node:')
              ? 'node'
              : where || '(native/vm)');
        byArea.set(area, (byArea.get(area) ?? 0) + n.selfSize);
        total += n.selfSize;
      }
      for (const c of n.children) walk(c);
    };
    walk(profile.head);
    const kb = (b: number) => fmt(b / 1024 / (live ? 1 : load.ok), 2);
    console.log(
      `${load.ok} turns at c=${concurrency}: ${kb(total)} KB sampled ${live ? 'live at the stop (KB, not per turn)' : 'per turn'}`,
    );
    const top = (m: Map<string, number>, n: number) =>
      [...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([k, v]) => [k, kb(v)]);
    console.log(table(['area (file or package)', 'KB/turn'], top(byArea, 30)));
    console.log();
    console.log(table(['function (self)', 'KB/turn'], top(bySite, Number(process.env.ALLOC_TOP ?? 40))));
  } finally {
    await child.stop();
    rmSync(file, { force: true });
  }
} finally {
  await db.drop();
  await dropRedisPrefix(prefix);
}
