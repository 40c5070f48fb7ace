// Preloaded into a benchmarked server (`--import tsx --import ./bench/count-hook.ts`, or compiled to
// JS by bench/held.ts so the built server runs without tsx): counts its Postgres and Redis traffic.
// On SIGUSR2 it appends one JSON line of running totals to COUNT_FILE; the bench takes differences.
// With `--expose-gc` it then forces a full collection and adds what survived it (`afterGc`): the
// live heap, not garbage, and the CPU time after that collection (so a bench can leave it out).
// `allocatedBytes` is every byte the JS heap handed out since start (garbage included): the heap's
// growth between collections, read from V8's GC profiler, plus its growth since the last one.
import { appendFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { GCProfiler, getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { Redis } from 'ioredis';
import pg from 'pg';

const pgPort = Number(process.env.COUNT_PG_PORT ?? 5432);
const redisPort = Number(process.env.COUNT_REDIS_PORT ?? 6379);
const totals = {
  pgQueries: 0,
  pgWrites: 0,
  redisWrites: 0,
  redisCommands: 0,
  redisByName: {} as Record<string, number>,
};

// A statement is one `query` call: with the extended protocol it is one round trip (Sync → ReadyForQuery).
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  totals.pgQueries++;
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;

// Every command ioredis sends, pipelined or not (EVALSHA's NOSCRIPT fallback shows up as EVAL).
const send = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function (this: Redis, command, stream) {
  totals.redisCommands++;
  const name = (command as { name: string }).name;
  totals.redisByName[name] = (totals.redisByName[name] ?? 0) + 1;
  return send.call(this, command, stream);
};

// A write on a connection to Redis or Postgres starts a round trip (a pipeline is one write).
const write = Socket.prototype.write;
Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
  if (this.remotePort === redisPort) totals.redisWrites++;
  else if (this.remotePort === pgPort) totals.pgWrites++;
  return (write as (...a: unknown[]) => boolean).apply(this, args);
} as typeof write;

// Bytes allocated = sum over collections of (used before it − used after the previous one).
let gcProfiler = new GCProfiler();
gcProfiler.start();
let allocatedBeforeLastGc = 0;
/** Collections since start, what scavenges kept (and of it, moved to the old generation), main-thread pause time (µs). */
const gcTotals = { scavenges: 0, markCompacts: 0, survivedBytes: 0, promotedBytes: 0, pauseUs: 0 };
let usedAfterLastGc = getHeapStatistics().used_heap_size;
function allocatedBytes(): number {
  const { statistics } = gcProfiler.stop();
  gcProfiler = new GCProfiler();
  gcProfiler.start();
  for (const s of statistics) {
    allocatedBeforeLastGc += s.beforeGC.heapStatistics.usedHeapSize - usedAfterLastGc;
    usedAfterLastGc = s.afterGC.heapStatistics.usedHeapSize;
    const young = (x: typeof s.beforeGC) =>
      x.heapSpaceStatistics.find((sp) => sp.spaceName === 'new_space')?.spaceUsedSize ?? 0;
    const old = (x: typeof s.beforeGC) =>
      x.heapSpaceStatistics.find((sp) => sp.spaceName === 'old_space')?.spaceUsedSize ?? 0;
    if (s.gcType === 'Scavenge') {
      gcTotals.scavenges++;
      gcTotals.promotedBytes += old(s.afterGC) - old(s.beforeGC);
      // What the scavenge kept (copied within the young generation or promoted): its cost driver.
      gcTotals.survivedBytes +=
        s.afterGC.heapStatistics.usedHeapSize - (s.beforeGC.heapStatistics.usedHeapSize - young(s.beforeGC));
    } else if (s.gcType === 'MarkSweepCompact') gcTotals.markCompacts++;
    gcTotals.pauseUs += s.cost;
  }
  return allocatedBeforeLastGc + getHeapStatistics().used_heap_size - usedAfterLastGc;
}

// Event-loop delay since the previous snapshot: how late timers (heartbeats) can fire.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

process.on('SIGUSR2', () => {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  const ms = (ns: number) => ns / 1e6;
  const delay = {
    p50: ms(loopDelay.percentile(50)),
    p99: ms(loopDelay.percentile(99)),
    max: ms(loopDelay.max),
  };
  loopDelay.reset();
  // Where the heap's committed bytes are (young generation, old space, code, large objects), in MB.
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics().map((x) => [
      x.space_name,
      [Math.round(x.space_size / 1048576), Math.round(x.space_used_size / 1048576)],
    ]),
  );
  const allocated = allocatedBytes();
  const gc = (globalThis as { gc?: () => void }).gc;
  let afterGc: { mem: NodeJS.MemoryUsage; cpuUs: number } | undefined;
  if (gc) {
    gc();
    const c = process.cpuUsage();
    afterGc = { mem: process.memoryUsage(), cpuUs: c.user + c.system };
  }
  appendFileSync(
    process.env.COUNT_FILE!,
    `${JSON.stringify({ ...totals, cpuUs: cpu.user + cpu.system, allocatedBytes: allocated, gc: gcTotals, rss: mem.rss, mem, delay, spaces, afterGc })}\n`,
  );
});
