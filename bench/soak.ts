// `npm run soak`: several hundred turns with aborts, resumes, stops and retry storms across two server processes,
// on a private Postgres and Redis, with SIGTERM, kill -9, a Postgres restart and a Redis restart injected once each.
import { sql } from 'drizzle-orm';
import { createDb, rowsOf } from '../src/db/client.js';
import { chunkText, spawnServer, startPrivateRedis, terminals } from '../test/support/cluster.js';
import { startFakeModel } from '../test/support/fake-model.js';
import { startPrivatePostgres } from '../test/support/private-postgres.js';
import { type SseEvent, streamRequest } from '../test/support/sse.js';

const MIN_TURNS = Number(process.env.SOAK_TURNS ?? 300);
const WORKERS = 12;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (n: number) => Math.floor(Math.random() * n);
const timeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, sleep(ms).then(() => Promise.reject(new Error('client timeout')))]);

const pgp = await startPrivatePostgres();
const redis = await startPrivateRedis();
// Replies long enough (about 3 s by default) that stops, aborts and faults land mid-stream.
const TOKENS = Number(process.env.SOAK_TOKENS ?? 120);
const TOKEN_MS = Number(process.env.SOAK_TOKEN_MS ?? 25);
const fake = await startFakeModel({
  tokens: Array.from({ length: TOKENS }, (_, i) => `palavra${i} `),
  delayMs: TOKEN_MS,
});
const db = await createDb({ databaseUrl: pgp.url, poolMax: 4 });
const env = {
  DATABASE_URL: pgp.url,
  REDIS_URL: redis.url,
  LLM_API_KEY: 'k',
  LLM_BASE_URL: fake.url,
  LOG_LEVEL: 'error',
  PRODUCER_HEARTBEAT_MS: '300',
  SWEEPER_INTERVAL_MS: '500',
  CHECKPOINT_MS: '200',
  FINAL_WRITE_RETRY_MS: '8000',
  SHUTDOWN_GRACE_MS: '500',
  RATE_LIMIT_CHAT_PER_MINUTE: '100000',
  RATE_LIMIT_READ_PER_MINUTE: '1000000',
  MAX_CONCURRENT_GENERATIONS: '100',
};
type Server = Awaited<ReturnType<typeof spawnServer>>;
// One after the other: the first migrates the empty database.
const live: Server[] = [await spawnServer(env)];
live.push(await spawnServer(env));
const pick = () => live[rand(live.length)]!.base;

interface Turn {
  session: string;
  messageIds: Set<string>;
  text: string;
  terminal: string | null;
  gaveUp: boolean;
  kind?: string;
  /** What each request of the turn saw (fault count, status, events, text, end), printed on a mismatch. */
  notes: string[];
  /** The answer to this turn's stop (after retries of 503s), when one was sent. */
  stop?: { status: number; message?: { status: string; content: string } };
}
const turns: Turn[] = [];
let started = 0;
let faultsDone = false;
const faults: string[] = [];

/** Reads a reply from `after` to its terminal event, resuming on any instance when a stream breaks. */
async function follow(t: Turn, id: string, after: SseEvent | undefined, stopAt?: number) {
  let last = after;
  for (let attempt = 0; attempt < 60 && !t.terminal; attempt++) {
    try {
      const r = await timeout(
        streamRequest(pick(), `/api/v1/chat/stream/${id}`, {
          headers: last ? { 'last-event-id': last.id } : {},
          disconnectAfter: stopAt,
          onEvent: (e) => {
            last = e;
            if (e.data.type === 'chunk') t.text += e.data.content;
            if (e.data.type === 'complete' || e.data.type === 'error') t.terminal = e.data.type;
          },
        }),
        30_000,
      );
      t.notes.push(
        `f${faults.length} follow ${r.status} ${r.events.length}ev ${chunkText(r.events).length}c ${r.events.at(-1)?.data.type ?? '-'} ${r.events.at(-1)?.data.code ?? ''}`,
      );
      if (stopAt !== undefined) return last;
      if (r.status !== 200) await sleep(200);
    } catch {
      await sleep(200);
    }
  }
  return last;
}

/** Stops a reply from either instance, retrying while the stop cannot be guaranteed (503). */
async function stopTurn(t: Turn, id: string) {
  for (let a = 0; a < 20; a++) {
    const r = await fetch(`${pick()}/api/v1/chat/messages/${id}/stop`, { method: 'POST' }).catch(() => null);
    if (r && (r.status === 200 || r.status === 409)) {
      const body = (await r.json()) as { status?: string; content?: string; error?: { details?: any } };
      const message = r.status === 200 ? body : body.error?.details?.message;
      t.stop = { status: r.status, message: message as { status: string; content: string } };
      return;
    }
    await r?.arrayBuffer().catch(() => null);
    await sleep(300);
  }
  t.stop = { status: 503 };
}

async function runTurn(i: number) {
  const t: Turn = {
    session: `soak-${i}`,
    messageIds: new Set(),
    text: '',
    terminal: null,
    gaveUp: false,
    notes: [],
  };
  turns.push(t);
  const kind = ['plain', 'abort', 'stop', 'storm'][i % 4]!;
  t.kind = kind;
  const body = { message: `pergunta ${i}`, session_id: t.session };
  let id: string | null = null;
  let last: SseEvent | undefined;
  const stopAway = i % 8 === 2;
  const stopAt = 3 + rand(Math.max(1, Math.floor(TOKENS / 3)));
  let stopping: Promise<void> = Promise.resolve();
  for (let attempt = 0; attempt < 60 && !id; attempt++) {
    // A retry storm: the same keyless POST three times at once, on both instances.
    const copies = kind === 'storm' || attempt > 0 ? 3 : 1;
    let chunks = 0;
    const results = await Promise.allSettled(
      Array.from({ length: copies }, (_, c) =>
        timeout(
          streamRequest(pick(), '/api/v1/chat/stream', {
            body,
            // A client abort: an `abort` turn's main copy goes away after a few events; so does
            // half of the `stop` turns' (the stop then comes from a client that is not following).
            disconnectAfter:
              c === 0
                ? kind === 'abort' || (kind === 'stop' && stopAway)
                  ? stopAt + rand(5)
                  : undefined
                : 2,
            // The other half sends its stop while it reads the reply, from either instance.
            onEvent:
              c === 0 && kind === 'stop' && !stopAway
                ? (e) => {
                    if (e.data.type === 'start') id ??= e.data.message_id;
                    if (e.data.type === 'chunk' && ++chunks === stopAt && id && !t.stop)
                      stopping = stopTurn(t, id);
                  }
                : undefined,
          }),
          60_000,
        ),
      ),
    );
    for (const r of results) {
      if (r.status !== 'fulfilled' || r.value.status !== 200 || !r.value.events[0]) continue;
      t.messageIds.add(r.value.events[0].data.message_id);
    }
    const main = results[0];
    if (main?.status === 'fulfilled' && main.value.events[0]) {
      id = main.value.events[0].data.message_id;
      const evs = main.value.events;
      const cut = evs.length;
      for (const e of evs.slice(0, cut)) {
        if (e.data.type === 'chunk') t.text += e.data.content;
        if (e.data.type === 'complete' || e.data.type === 'error') t.terminal = e.data.type;
      }
      last = evs[cut - 1];
      t.notes.push(
        `f${faults.length} post ${evs.length}ev ${chunkText(evs).length}c ${evs.at(-1)?.data.type} ${evs.at(-1)?.data.code ?? ''}`,
      );
    } else if ([...t.messageIds][0]) id = [...t.messageIds][0]!;
    else await sleep(200 + rand(300));
  }
  if (!id) {
    t.gaveUp = true;
    return;
  }
  if (kind === 'stop' && !t.terminal && !t.stop) await stopTurn(t, id);
  await stopping;
  if (!t.terminal) await follow(t, id, last);
}

async function worker() {
  while (started < MIN_TURNS || (!faultsDone && started < 3000)) await runTurn(started++);
}

async function injectFaults() {
  const at = async (n: number) => {
    while (started < n) await sleep(50);
  };
  const replace = async (signal: NodeJS.Signals) => {
    // The replacement boots while the victim still takes turns, so the signal lands mid-reply.
    const fresh = await spawnServer(env);
    const victim = live.shift()!;
    live.push(fresh);
    const exited = new Promise((r) => victim.child.once('exit', r));
    victim.child.kill(signal);
    await exited;
  };
  await at(MIN_TURNS * 0.15);
  await replace('SIGTERM');
  faults.push('SIGTERM');
  await at(started + 30);
  await replace('SIGKILL');
  faults.push('kill -9');
  await at(started + 30);
  await pgp.stop();
  await sleep(1500);
  await pgp.start();
  faults.push('postgres restart');
  await at(started + 30);
  await redis.stop();
  await sleep(1000);
  await redis.start();
  faults.push('redis restart');
  faultsDone = true;
}

const t0 = Date.now();
await Promise.all([injectFaults(), ...Array.from({ length: WORKERS }, worker)]);
// Let the sweeper close what dead producers left.
const q = async <T>(s: ReturnType<typeof sql>) => rowsOf<T>(await db.db.execute(s));
for (let i = 0; i < 100; i++) {
  const [n] = await q<{ n: number }>(
    sql`select count(*)::int as n from chat_messages where status = 'streaming'`,
  );
  if (n!.n === 0) break;
  await sleep(200);
}
const rows = await q<{ id: string; session_id: string; role: string; status: string; content: string }>(
  sql`select id, session_id, role, status, content from chat_messages where session_id like 'soak-%'`,
);
const bySession = new Map<string, typeof rows>();
for (const r of rows) bySession.set(r.session_id, [...(bySession.get(r.session_id) ?? []), r]);
let lost = 0;
let duplicated = 0;
let replayMismatch = 0;
let clientMismatch = 0;
for (const t of turns) {
  const users = (bySession.get(t.session) ?? []).filter((r) => r.role === 'user');
  if (t.gaveUp || users.length === 0) lost++;
  if (users.length > 1 || t.messageIds.size > 1) duplicated++;
}
const assistants = rows.filter((r) => r.role === 'assistant');
const stuck = assistants.filter((r) => r.status === 'streaming').length;
for (const r of assistants) {
  const replay = await streamRequest(pick(), `/api/v1/chat/stream/${r.id}`).catch(() => null);
  const ok =
    replay?.status === 200 &&
    terminals(replay.events).length === 1 &&
    ['complete', 'error'].includes(replay.events.at(-1)!.data.type) &&
    chunkText(replay.events) === r.content;
  if (!ok) replayMismatch++;
  const t = turns.find((x) => x.messageIds.has(r.id));
  if (t?.terminal && t.text !== r.content) {
    clientMismatch++;
    console.error(
      JSON.stringify({
        mismatch: r.id,
        status: r.status,
        row: r.content.length,
        client: t.text.length,
        terminal: t.terminal,
        kind: t.kind,
        notes: t.notes,
        prefix: r.content.startsWith(t.text) || t.text.startsWith(r.content),
      }),
    );
  }
}
// A stop answered 200 is a promise: the reply ends `stopped` with exactly the text the answer showed.
let stopsSent = 0;
let stopsStopped = 0;
let stopsNotRunning = 0;
let stopsUnavailable = 0;
let stopNotHonoured = 0;
for (const t of turns) {
  if (!t.stop) continue;
  stopsSent++;
  if (t.stop.status === 409) stopsNotRunning++;
  if (t.stop.status !== 200 && t.stop.status !== 409) stopsUnavailable++;
  if (t.stop.status !== 200) continue;
  stopsStopped++;
  const r = assistants.find((a) => t.messageIds.has(a.id));
  if (
    t.stop.message?.status !== 'stopped' ||
    r?.status !== 'stopped' ||
    r.content !== t.stop.message.content
  ) {
    stopNotHonoured++;
    console.error(
      JSON.stringify({
        stopNotHonoured: r?.id,
        answer: t.stop.message?.status,
        answerLen: t.stop.message?.content?.length,
        row: r?.status,
        rowLen: r?.content.length,
      }),
    );
  }
}
const statuses: Record<string, number> = {};
for (const r of assistants) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
console.log(
  JSON.stringify(
    {
      turns: turns.length,
      faults,
      seconds: Math.round((Date.now() - t0) / 1000),
      statuses,
      lost_turns: lost,
      duplicated_turns: duplicated,
      rows_stuck_streaming: stuck,
      replays_not_equal_to_row: replayMismatch,
      client_views_not_equal_to_row: clientMismatch,
      stops: {
        sent: stopsSent,
        stopped: stopsStopped,
        not_running: stopsNotRunning,
        unavailable: stopsUnavailable,
      },
      stops_acknowledged_not_honoured: stopNotHonoured,
    },
    null,
    2,
  ),
);
for (const s of live) s.child.kill('SIGTERM');
await db.close();
await fake.close();
await redis.destroy();
await pgp.destroy();
process.exit(lost + duplicated + stuck + replayMismatch + clientMismatch + stopNotHonoured === 0 ? 0 : 1);
