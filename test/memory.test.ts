import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryStore, type MemoryDeps } from '../src/modules/memory/memory.js';
import { createRedis } from '../src/plugins/redis.js';
import { createTestRedis, silentLogger } from './support/backends.js';

const DAY = 24 * 3600;
const redis = createTestRedis();
afterAll(async () => {
  if (redis) {
    const keys = await redis.client.keys(`${redis.prefix}*`);
    if (keys.length) await redis.client.del(...keys);
    await redis.close();
  }
});

const turn = (n: number, extra = '') => ({
  user: `pergunta ${n}${extra}`,
  assistant: `resposta ${n}${extra}`,
  agentId: 'zumbi',
  at: `2025-01-01T00:00:${String(n % 60).padStart(2, '0')}Z`,
});

function store(over: Partial<MemoryDeps> = {}) {
  return createMemoryStore({
    redis: null,
    conversationTtlS: DAY,
    episodicTtlS: 30 * DAY,
    log: silentLogger(),
    ...over,
  });
}

// The same contract holds on both backends; Redis runs only when the test run has one.
type Make = (over?: Partial<MemoryDeps>) => ReturnType<typeof store>;
const backendsUnderTest: Array<[string, Make]> = [['in-process', (over) => store(over)]];
if (redis) backendsUnderTest.push(['redis', (over) => store({ redis, ...over })]);

describe.each(backendsUnderTest)('memory (%s)', (_name, make) => {
  it('returns recent turns oldest first, per session, each summarised with the agent', async () => {
    const m = make();
    await m.rememberTurn('s-1', turn(1));
    await m.rememberTurn('s-1', turn(2));
    await m.rememberTurn('s-2', turn(9));
    const conv = await m.conversation('s-1');
    expect(conv).toHaveLength(2);
    expect(conv[0]).toContain('pergunta 1');
    expect(conv[0]).toContain('zumbi: resposta 1');
    expect(conv[1]).toContain('pergunta 2');
    expect(await m.conversation('s-unknown')).toEqual([]);
  });

  it('keeps only the newest items, each at most maxItemChars', async () => {
    const bounded = make({ maxConversationItems: 3, maxEpisodes: 2, maxItemChars: 120 });
    for (let i = 1; i <= 7; i++) await bounded.rememberTurn('s-b', turn(i, ' '.concat('z'.repeat(300))));
    const conv = await bounded.conversation('s-b');
    expect(conv).toHaveLength(3);
    expect(conv.map((c) => c.match(/pergunta (\d)/)?.[1])).toEqual(['5', '6', '7']);
    for (const c of conv) expect(c.length).toBeLessThanOrEqual(120);

    for (const e of ['um', 'dois', 'três'])
      await bounded.rememberEpisode('u-b', `episódio ${e} ${'w'.repeat(500)}`);
    const eps = await bounded.episodes('u-b');
    expect(eps.map((e) => e.split(' ')[1])).toEqual(['dois', 'três']);
    for (const e of eps) expect(e.length).toBeLessThanOrEqual(120);
  });

  it('keeps episodes per user', async () => {
    const m = make();
    await m.rememberEpisode('u-1', 'Pediu contratos de merenda em Recife');
    await m.rememberEpisode('u-2', 'Outro usuário');
    expect(await m.episodes('u-1')).toEqual(['Pediu contratos de merenda em Recife']);
    expect(await m.episodes('u-none')).toEqual([]);
  });
});

describe('memory in Redis', () => {
  it.runIf(redis)('uses the documented keys with the configured TTLs', async () => {
    const r = redis!;
    const m = store({ redis: r });
    await m.rememberTurn('sess-ttl', turn(1));
    await m.rememberEpisode('user-ttl', 'gosta de dados de saúde');
    const convKey = `${r.prefix}memory:conv:sess-ttl`;
    const epKey = `${r.prefix}memory:episodic:user-ttl`;
    expect(await r.client.llen(convKey)).toBe(1);
    expect(await r.client.lrange(epKey, 0, -1)).toEqual(['gosta de dados de saúde']);
    const convTtl = await r.client.ttl(convKey);
    const epTtl = await r.client.ttl(epKey);
    expect(convTtl).toBeGreaterThan(DAY - 60);
    expect(convTtl).toBeLessThanOrEqual(DAY);
    expect(epTtl).toBeGreaterThan(30 * DAY - 60);
    expect(epTtl).toBeLessThanOrEqual(30 * DAY);
    expect(m.describe).toMatch(/redis/);
  });
});

describe('memory in process', () => {
  it('expires a list after its TTL and restarts the TTL on each write', async () => {
    let t = 1_000_000;
    const m = store({ now: () => t, conversationTtlS: 60, episodicTtlS: 600 });
    await m.rememberTurn('s', turn(1));
    await m.rememberEpisode('u', 'episódio');
    t += 50_000;
    await m.rememberTurn('s', turn(2));
    t += 50_000; // 100 s after the first write, 50 s after the last
    expect(await m.conversation('s')).toHaveLength(2);
    t += 10_001;
    expect(await m.conversation('s')).toEqual([]);
    expect(await m.episodes('u')).toEqual(['episódio']);
    t += 600_000;
    expect(await m.episodes('u')).toEqual([]);
    expect(m.describe).toMatch(/in-process/);
  });
});

describe('memory with Redis down', () => {
  it('resolves empty without throwing and logs at most once per 10 s', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    const dead = createRedis(`redis://127.0.0.1:${port}`, 'dead:', silentLogger());
    const warns: unknown[] = [];
    const m = store({ redis: dead, log: { warn: (o: unknown) => void warns.push(o) } as MemoryDeps['log'] });
    try {
      await expect(m.rememberTurn('s', turn(1))).resolves.toBeUndefined();
      await expect(m.conversation('s')).resolves.toEqual([]);
      await expect(m.rememberEpisode('u', 'x')).resolves.toBeUndefined();
      await expect(m.episodes('u')).resolves.toEqual([]);
      expect(warns).toHaveLength(1);
    } finally {
      await dead.close();
    }
  });
});
