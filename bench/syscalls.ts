// Syscalls per turn, ours+redis against floor+redis at c=16 (`strace -c -f` attached for one window).
// Counts do not depend on how loaded the box is, so they tell what a CPU ratio cannot: how many
// socket writes and reads a turn costs each server. Run: npm run build && node --import tsx bench/syscalls.ts [turns=1500]
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from './client.js';
import { createBenchDb } from './pgadmin.js';
import type { Child } from './procs.js';
import { checkTurn, dropRedisPrefix, ROOT, recordTurn, startFloor, startOurs, TURN_BODY } from './targets.js';

const turns = Number(process.argv[2] ?? 1500);
const serverJs = process.env.BENCH_SERVER_JS ?? join(ROOT, 'dist/src/server.js');
const prefix = `bench:sys:${process.pid}:`;

async function traced(label: string, child: Child): Promise<Map<string, number>> {
  await runLoad({ base: child.base, body: TURN_BODY, concurrency: 16, turns: 500 });
  const out = join(tmpdir(), `sys-${process.pid}-${label}.txt`);
  const strace = spawn('strace', ['-c', '-f', '-o', out, '-p', String(child.pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // strace says "Process N attached" on stderr once it traces the process.
  await new Promise<void>((resolve, reject) => {
    strace.once('exit', (code) => reject(new Error(`strace exited (${code}); is ptrace allowed here?`)));
    strace.stderr!.on('data', (b: Buffer) => {
      if (b.toString().includes('attached')) resolve();
    });
  });
  const load = await runLoad({ base: child.base, body: TURN_BODY, concurrency: 16, turns });
  strace.kill('SIGINT');
  await new Promise((r) => strace.once('exit', r));
  const calls = new Map<string, number>();
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line);
    if (m) calls.set(m[2]!, Number(m[1]) / load.ok);
  }
  rmSync(out, { force: true });
  return calls;
}

const dbOurs = await createBenchDb('sys');
const dbFloor = await createBenchDb('sysf');
try {
  const ours = await startOurs({ db: dbOurs, serverJs, redisPrefix: prefix });
  let probe: Awaited<ReturnType<typeof recordTurn>>;
  try {
    await checkTurn(ours.base);
    probe = await recordTurn(ours.base);
  } catch (e) {
    await ours.stop();
    throw e;
  }
  const a = await traced('ours', ours).finally(() => ours.stop());
  const floor = await startFloor(dbFloor, probe.file, { redisPrefix: `${prefix}floor:` });
  const b = await traced('floor', floor).finally(() => floor.stop());
  rmSync(probe.file, { force: true });
  const names = [...new Set([...a.keys(), ...b.keys()])].sort(
    (x, y) => (b.get(y) ?? 0) + (a.get(y) ?? 0) - (b.get(x) ?? 0) - (a.get(x) ?? 0),
  );
  console.log(`syscalls per turn at c=16 (${turns} turns): name  ours+redis  floor+redis`);
  for (const n of names)
    console.log(
      `${n.padEnd(20)} ${(a.get(n) ?? 0).toFixed(2).padStart(8)} ${(b.get(n) ?? 0).toFixed(2).padStart(8)}`,
    );
} finally {
  await dbOurs.drop();
  await dbFloor.drop();
  await dropRedisPrefix(prefix);
}
