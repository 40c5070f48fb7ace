// What ioredis' ways of sending a stream-log flush leave for V8's old generation: 200 flushes a
// second of 5 XADDs each (as 10k held replies produce), for 15 s, and the bytes scavenges promoted
// (V8's GC profiler). `multi` and `pipeline` link their commands, promises and pipeline, which
// survive scavenges together; `script` is one EVALSHA per flush, as src/modules/generation/redis-log.ts
// sends it; `single` five plain commands; `none` sends nothing (the baseline).
// Run: node --max-semi-space-size=8 --import tsx bench/promotion.ts [none|multi|pipeline|single|script]
// Uses the shared Redis (REDIS_URL or 127.0.0.1:6379) under a bench key prefix, removed at the end.
import { GCProfiler } from 'node:v8';
import { Redis } from 'ioredis';

const mode = process.argv[2] ?? 'script';
const prefix = `bench:promotion:${process.pid}:`;
const r = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { commandTimeout: 2000 });
r.defineCommand('flush', {
  lua: `for i = 1, #KEYS do redis.pcall('XADD', KEYS[i], 'MAXLEN', '~', '1000', '*', 'e', ARGV[i]) end`,
});
await r.ping();
const keys = Array.from({ length: 5 }, (_, i) => `${prefix}${i}`);
const event = (i: number) => JSON.stringify({ type: 'chunk', content: `palavra ${i} `, agent_id: 'zumbi' });
const noop = () => {};

const profiler = new GCProfiler();
profiler.start();
const timer = setInterval(() => {
  if (mode === 'multi' || mode === 'pipeline') {
    const p = mode === 'multi' ? r.multi() : r.pipeline();
    for (const [i, k] of keys.entries()) p.xadd(k, 'MAXLEN', '~', 1000, '*', 'e', event(i));
    p.exec().then(noop, noop);
  } else if (mode === 'single') {
    for (const [i, k] of keys.entries()) r.xadd(k, 'MAXLEN', '~', 1000, '*', 'e', event(i)).then(noop, noop);
  } else if (mode === 'script') {
    (r as Redis & { flush(n: number, ...a: string[]): Promise<unknown> })
      .flush(keys.length, ...keys, ...keys.map((_, i) => event(i)))
      .then(noop, noop);
  }
}, 5);
await new Promise((resolve) => setTimeout(resolve, 15_000));
clearInterval(timer);
const { statistics } = profiler.stop();
let promoted = 0;
let scavenges = 0;
let others = 0;
for (const s of statistics) {
  const old = (x: (typeof s)['beforeGC']) =>
    x.heapSpaceStatistics.find((sp) => sp.spaceName === 'old_space')?.spaceUsedSize ?? 0;
  if (s.gcType === 'Scavenge') {
    scavenges++;
    promoted += old(s.afterGC) - old(s.beforeGC);
  } else others++;
}
console.log(
  `${mode}: promoted ${(promoted / 1048576).toFixed(1)} MB in 15 s; ${scavenges} scavenges, ${others} other collections`,
);
await r.del(...keys);
await r.quit();
