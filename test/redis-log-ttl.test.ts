// The stream log's TTL: a reply's key expires whether its events took one flush or many, and a key
// that the next XADD re-creates on a new connection (Redis restarted, the key gone) expires too.
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
  it('a reply spanning several flushes keeps a TTL; after a reconnect, a re-created key gets one again', async () => {
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
    mirror.end(messageId);
    await r.client.del(key);
  });
});
