// JIT work in a warm server: TurboFan compilations and deoptimizations of ours+redis per window of
// turns at c=16 (--trace-opt / --trace-deopt on the server). Concurrent compilation runs on V8's
// helper threads (bench/threads.ts), so windows with many compilations bill it to the turns.
// Run: npm run build && node --import tsx bench/jit.ts [windows=3] [turns per window=4000]
// JIT_WARMUP (default 2000) turns before the first window; BENCH_SERVER_JS measures another build;
// JIT_TARGET=floor counts the floor+redis instead; JIT_NAMES=1 lists the functions that took the most compile time per window.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { runLoad } from './client.js';
import { createBenchDb } from './pgadmin.js';
import { checkTurn, dropRedisPrefix, ROOT, recordTurn, startFloor, startOurs, TURN_BODY } from './targets.js';

const windows = Number(process.argv[2] ?? 3);
const perWindow = Number(process.argv[3] ?? 4000);
const warmup = Number(process.env.JIT_WARMUP ?? 2000);
const serverJs = process.env.BENCH_SERVER_JS ?? join(ROOT, 'dist/src/server.js');
const db = await createBenchDb('jit');
const prefix = `bench:jit:${process.pid}:`;
const nodeFlags = ['--trace-deopt', '--trace-opt'];
let ours = await startOurs({
  db,
  serverJs,
  redisPrefix: prefix,
  ...(process.env.JIT_TARGET === 'floor' ? {} : { nodeFlags }),
});
if (process.env.JIT_TARGET === 'floor') {
  // The floor replays a turn recorded from our server.
  const probe = await recordTurn(ours.base).finally(() => ours.stop());
  ours = await startFloor(db, probe.file, { redisPrefix: `${prefix}floor:`, nodeFlags });
  rmSync(probe.file, { force: true });
}
try {
  await checkTurn(ours.base);
  await runLoad({ base: ours.base, body: TURN_BODY, concurrency: 16, turns: warmup });
  let lines: string[] = [];
  ours.proc.stdout!.on('data', (b: Buffer) => lines.push(...b.toString().split('\n')));
  for (let w = 0; w < windows; w++) {
    lines = [];
    const load = await runLoad({ base: ours.base, body: TURN_BODY, concurrency: 16, turns: perWindow });
    const deopts = new Map<string, number>();
    const compiled = new Map<string, number>();
    let compiles = 0;
    let compileMs = 0;
    for (const l of lines) {
      const d =
        /bailout \(kind: [^,]*, reason: ([^)]*)\): begin\. deoptimizing [^ ]+ <JSFunction ([^ >]*)/.exec(l);
      if (d) deopts.set(`${d[2]} (${d[1]})`, (deopts.get(`${d[2]} (${d[1]})`) ?? 0) + 1);
      else if (/^\[compiling method .*TURBOFAN/.test(l)) compiles++;
      else {
        // "[completed compiling … <JSFunction f …> (target TURBOFAN) - took a, b, c ms]": prepare
        // (main thread), execute (a helper thread), finalize (main thread).
        const c = /^\[completed compiling .*<JSFunction ([^ >]*).* took ([\d.]+), ([\d.]+), ([\d.]+) ms/.exec(
          l,
        );
        if (!c) continue;
        const ms = Number(c[2]) + Number(c[3]) + Number(c[4]);
        compileMs += ms;
        compiled.set(c[1]!, (compiled.get(c[1]!) ?? 0) + ms);
      }
    }
    const from = warmup + w * perWindow;
    const total = [...deopts.values()].reduce((a, b) => a + b, 0);
    console.log(
      `turns ${from}-${from + load.ok}: ${compiles} TurboFan compilations (${compileMs.toFixed(0)} ms, ` +
        `${((compileMs * 1000) / Math.max(1, load.ok)).toFixed(0)} µs/turn), ${total} deoptimizations`,
    );
    const top = [...deopts].sort((a, b) => b[1] - a[1]).slice(0, 10);
    if (top.length) console.log(`  deopts: ${top.map(([k, v]) => `${v}× ${k}`).join('; ')}`);
    if (process.env.JIT_NAMES) {
      const names = [...compiled].sort((a, b) => b[1] - a[1]).slice(0, 40);
      console.log(`  compile ms: ${names.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
    }
  }
} finally {
  await ours.stop();
  await db.drop();
  await dropRedisPrefix(prefix);
}
