// CPU per turn split by thread: the main thread against V8's helper threads (parallel scavenge,
// concurrent marking and sweeping, concurrent compilation), for ours+redis and floor+redis at c=16
// after a 2,000-turn warm-up (THREADS_WARMUP). A profile (bench/profile.ts) only sees the main thread.
// Run: npm run build && node --import tsx bench/threads.ts [turns=3000]
// BENCH_SERVER_JS=<dir>/dist/src/server.js measures another build; THREADS_NODE_FLAGS='--single-threaded-gc'
// passes node flags to both servers (e.g. to tell GC helper work from concurrent compilation).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runLoad } from './client.js';
import { createBenchDb } from './pgadmin.js';
import { clockTicks } from './procs.js';
import { checkTurn, dropRedisPrefix, ROOT, recordTurn, startFloor, startOurs, TURN_BODY } from './targets.js';

const serverJs = process.env.BENCH_SERVER_JS ?? join(ROOT, 'dist/src/server.js');
/** CPU seconds by thread: the main thread, and the others summed by name (V8's workers are "node"). */
function threads(pid: number) {
  const out: Record<string, number> = {};
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const key = String(t) === String(pid) ? 'main' : name.replace(/\d+$/, '');
      out[key] = (out[key] ?? 0) + (Number(f[11]) + Number(f[12])) / clockTicks();
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}
const turns = Number(process.argv[2] ?? 3000);
const warmup = Number(process.env.THREADS_WARMUP ?? 2000);
const db = await createBenchDb('threads');
const db2 = await createBenchDb('threads2');
const pre = `bench:thr:${process.pid}:`;
const nodeFlags = process.env.THREADS_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
const ours = await startOurs({ db, serverJs, redisPrefix: pre, nodeFlags });
const spec = (await recordTurn(ours.base)).file;
const floor = await startFloor(db2, spec, { redisPrefix: `${pre}f:`, nodeFlags });
for (const [name, child] of [
  ['ours+redis', ours],
  ['floor+redis', floor],
] as const) {
  await checkTurn(child.base);
  await runLoad({ base: child.base, body: TURN_BODY, concurrency: 16, turns: warmup });
  const a = threads(child.pid);
  const r = await runLoad({ base: child.base, body: TURN_BODY, concurrency: 16, turns });
  const b = threads(child.pid);
  const per = Object.fromEntries(
    Object.keys(b).map((k) => [k, +((((b[k] ?? 0) - (a[k] ?? 0)) * 1e6) / r.ok).toFixed(0)]),
  );
  console.log(`${name}: ${r.ok} turns, CPU µs/turn by thread ${JSON.stringify(per)}`);
}
await ours.stop();
await floor.stop();
await db.drop();
await db2.drop();
await dropRedisPrefix(pre);
rmSync(spec, { force: true });
