// The stream log's TTL: a reply's key expires whether its events took one flush or many, and a key
// that the next XADD re-creates on a new connection (Redis restarted, the key gone) expires too.
// One flush is one script call: a command in it that fails does not stop the others. A key that
// an eviction removed mid-reply gets its TTL again, and a long reply's key is renewed.
import { afterAll, describe, expect, it } from 'vitest';
import { chunkEvent, type StreamEntry, startEvent } from '../src/modules/generation/events.js';
import { createRedisMirror } from '../src/modules/generation/redis-log.js';
import { createTestRedis, silentLogger } from './support/backends.js';
import { waitFor } from './support/cluster.js';

const redis = createTestRedis();
afterAll(async () => {
  await redis?.close();
});

describe.skipIf(!redis)('stream log TTL', () => {
  it('a reply spanning several flushes keeps a TTL; a key re-created after a reconnect or an eviction gets one again', async () => {
    const r = redis!;
    const mirror = createRedisMirror(r, { maxLen: 1000, ttlS: 600, log: silentLogger() });
    const messageId = '6f1c1f5e-0000-4000-8000-0000000000aa';
    const key = `${r.prefix}gen:${messageId}`;
    let seq = 0;
    let offset = 0;
    const append = (event: StreamEntry['event']) => {
      if (event.type === 'chunk') offset += event.content.length;
      seq++;
      mirror.append(messageId, { id: `${offset}-${seq}`, seq, offset, event });
    };
    const logged = (n: number) => waitFor(async () => (await r.client.xlen(key)) === n);
    // The mirror drops what it is given while Redis is not connected (resume falls back to the row).
    await waitFor(async () => r.ready());

    append(startEvent({ sessionId: 's', messageId, userMessageId: null, startedAt: new Date() }));
    await logged(1);
    expect(await r.client.ttl(key)).toBeGreaterThan(0);
    // A later flush of the same reply: the key still has its TTL.
    append(chunkEvent('um ', 'abaporu'));
    await logged(2);
    expect(await r.client.ttl(key)).toBeGreaterThan(0);

    // A restart as the mirror sees it: a new connection, and the key gone with the old server.
    r.client.disconnect(true);
    await r.client.del(key);
    await waitFor(async () => r.ready());
    append(chunkEvent('dois ', 'abaporu'));
    await logged(1);
    expect(await r.client.ttl(key)).toBeGreaterThan(0);

    // An eviction mid-reply (maxmemory): the key goes while the connection stays; the next XADD
    // makes it again, and it gets a TTL again.
    await r.client.del(key);
    append(chunkEvent('tres ', 'abaporu'));
    await logged(1);
    expect(await r.client.ttl(key)).toBeGreaterThan(0);

    // A reply outliving half its TTL: the next flush renews it.
    await r.client.expire(key, 100);
    append(chunkEvent('quatro', 'abaporu'));
    await logged(2);
    expect(await r.client.ttl(key)).toBeGreaterThan(300);
    await r.client.del(key);
  });

  it('one flush logs every reply, merges a run of chunks, releases a slot, and a failing XADD stops nothing else', async () => {
    const r = redis!;
    const mirror = createRedisMirror(r, { maxLen: 1000, ttlS: 600, log: silentLogger() });
    const ok = '6f1c1f5e-0000-4000-8000-0000000000b1';
    const clash = '6f1c1f5e-0000-4000-8000-0000000000b2';
    const okKey = `${r.prefix}gen:${ok}`;
    const clashKey = `${r.prefix}gen:${clash}`;
    const slots = `${r.prefix}test:slots`;
    await waitFor(async () => r.ready());
    await r.client.del(okKey, clashKey, slots);
    await r.client.zadd(slots, 1, 'slot-a', 2, 'slot-b');
    // An entry already past the one the mirror will add: Redis refuses that XADD (id too small).
    await r.client.xadd(clashKey, '99999-999', 'e', '{}');

    mirror.append(ok, {
      id: '0-1',
      seq: 1,
      offset: 0,
      event: startEvent({ sessionId: 's', messageId: ok, userMessageId: null, startedAt: new Date() }),
    });
    mirror.append(ok, { id: '3-2', seq: 2, offset: 3, event: chunkEvent('um ', 'zumbi') });
    mirror.append(ok, { id: '8-3', seq: 3, offset: 8, event: chunkEvent('dois ', 'zumbi') });
    mirror.append(clash, { id: '4-1', seq: 1, offset: 4, event: chunkEvent('tres', 'zumbi') });
    mirror.removeLater(slots, 'slot-a');
    await waitFor(async () => (await r.client.zcard(slots)) === 1);

    const logged = await r.client.xrange(okKey, '-', '+');
    expect(logged.map(([id]) => id)).toEqual(['0-1', '8-3']);
    expect(JSON.parse(logged[1]![1][1]!)).toEqual({ type: 'chunk', content: 'um dois ', agent_id: 'zumbi' });
    expect(await r.client.ttl(okKey)).toBeGreaterThan(0);
    // The refused XADD left its key as it was, and the EXPIRE after it still ran.
    expect((await r.client.xrange(clashKey, '-', '+')).map(([id]) => id)).toEqual(['99999-999']);
    expect(await r.client.ttl(clashKey)).toBeGreaterThan(0);
    expect(await r.client.zrange(slots, 0, -1)).toEqual(['slot-b']);
    await r.client.del(okKey, clashKey, slots);
  });
});
