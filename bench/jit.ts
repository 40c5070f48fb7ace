// JIT work in a warm server: TurboFan compilations and deoptimizations of ours+redis per window of
// turns at c=16 (--trace-opt / --trace-deopt on the server). Concurrent compilation runs on V8's
// helper threads (bench/threads.ts), so windows with many compilations bill it to the turns.
// Run: npm run build && node --import tsx bench/jit.ts [windows=3] [turns per window=4000]
// JIT_WARMUP (default 2000) turns before the first window; BENCH_SERVER_JS measures another build.
import { join } from 'node:path';
import { runLoad } from './client.js';
import { createBenchDb } from './pgadmin.js';
import { checkTurn, dropRedisPrefix, ROOT, startOurs, TURN_BODY } from './targets.js';

const windows = Number(process.argv[2] ?? 3);
const perWindow = Number(process.argv[3] ?? 4000);
const warmup = Number(process.env.JIT_WARMUP ?? 2000);
const serverJs = process.env.BENCH_SERVER_JS ?? join(ROOT, 'dist/src/server.js');
const db = await createBenchDb('jit');
const prefix = `bench:jit:${process.pid}:`;
const ours = await startOurs({
  db,
  serverJs,
  redisPrefix: prefix,
  nodeFlags: ['--trace-deopt', '--trace-opt'],
});
try {
  await checkTurn(ours.base);
  await runLoad({ base: ours.base, body: TURN_BODY, concurrency: 16, turns: warmup });
  let lines: string[] = [];
  ours.proc.stdout!.on('data', (b: Buffer) => lines.push(...b.toString().split('\n')));
  for (let w = 0; w < windows; w++) {
    lines = [];
    const load = await runLoad({ base: ours.base, body: TURN_BODY, concurrency: 16, turns: perWindow });
    const deopts = new Map<string, number>();
    let compiles = 0;
    for (const l of lines) {
      const d =
        /bailout \(kind: [^,]*, reason: ([^)]*)\): begin\. deoptimizing [^ ]+ <JSFunction ([^ >]*)/.exec(l);
      if (d) deopts.set(`${d[2]} (${d[1]})`, (deopts.get(`${d[2]} (${d[1]})`) ?? 0) + 1);
      else if (/^\[compiling method .*TURBOFAN/.test(l)) compiles++;
    }
    const from = warmup + w * perWindow;
    const total = [...deopts.values()].reduce((a, b) => a + b, 0);
    console.log(
      `turns ${from}-${from + load.ok}: ${compiles} TurboFan compilations, ${total} deoptimizations`,
    );
    const top = [...deopts].sort((a, b) => b[1] - a[1]).slice(0, 10);
    if (top.length) console.log(`  ${top.map(([k, v]) => `${v}× ${k}`).join('; ')}`);
  }
} finally {
  await ours.stop();
  await db.drop();
  await dropRedisPrefix(prefix);
}
