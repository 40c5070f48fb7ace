// Query latency: one 100,000-message session and one user with 10,000 sessions; history and session list over HTTP.
// Run alone: npm run build && node --import tsx bench/queries.ts   (also run by bench/run.ts)
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { SignJWT } from 'jose';
import pg from 'pg';
import { getSession, historyPage, listSessions } from '../src/modules/chat/chat.repo.js';
import { createBenchDb } from './pgadmin.js';
import { captureSql, explainOf, type Statement } from './sqlshape.js';
import { percentile } from './stats.js';
import { BENCH_JWT_SECRET, ROOT, startOurs } from './targets.js';

const USER = 'bench-user-0001';
const LONG_SESSION = 'bench_long_session';
const MESSAGES = 100_000;
const USER_SESSIONS = 10_000;
// Other users' sessions (2 messages each), so the indexes hold neighbours, not only the user's rows.
const OTHER_SESSIONS = 40_000;

export interface RouteLatency {
  route: string;
  requests: number;
  p50: number;
  p99: number;
  max: number;
}

export interface QueryResults {
  seedMs: number;
  routes: RouteLatency[];
  explains: Array<{ label: string; plan: string }>;
}

const SEED = [
  `insert into chat_sessions (id, user_id, title, message_count, last_seq, created_at, updated_at, last_message_at, last_activity_at)
   select 'bench_u_' || g, '${USER}', 'Sessão ' || g, 2, 2,
          now() - g * interval '1 minute', now() - g * interval '1 minute', now() - g * interval '1 minute', now() - g * interval '1 minute'
   from generate_series(1, ${USER_SESSIONS - 1}) g`,
  `insert into chat_sessions (id, user_id, title, message_count, last_seq, last_message_at, last_activity_at)
   values ('${LONG_SESSION}', '${USER}', 'Conversa longa', ${MESSAGES}, ${MESSAGES}, now(), now())`,
  `insert into chat_sessions (id, user_id, title, message_count, last_seq, created_at, updated_at, last_message_at, last_activity_at)
   select 'bench_o_' || g, 'other-user-' || (g % 4000), 'Outra ' || g, 2, 2,
          now() - g * interval '7 seconds', now() - g * interval '7 seconds', now() - g * interval '7 seconds', now() - g * interval '7 seconds'
   from generate_series(1, ${OTHER_SESSIONS}) g`,
  `insert into chat_messages (id, session_id, seq, role, content, status, user_id, agent_id, agent_name, created_at, updated_at)
   select gen_random_uuid(), '${LONG_SESSION}', g, case when g % 2 = 1 then 'user' else 'assistant' end,
          repeat('conteúdo da mensagem ', 5 + g % 30), 'completed', '${USER}',
          case when g % 2 = 0 then 'abaporu' end, case when g % 2 = 0 then 'Abaporu' end,
          now() - (${MESSAGES} - g) * interval '1 second', now() - (${MESSAGES} - g) * interval '1 second'
   from generate_series(1, ${MESSAGES}) g`,
  `insert into chat_messages (id, session_id, seq, role, content, status, user_id, created_at, updated_at)
   select gen_random_uuid(), 'bench_o_' || (g / 2 + 1), g % 2 + 1, case when g % 2 = 0 then 'user' else 'assistant' end,
          'mensagem curta', 'completed', 'other-user-' || ((g / 2 + 1) % 4000), now(), now()
   from generate_series(0, ${OTHER_SESSIONS * 2 - 1}) g`,
  // What autovacuum would have done by the time a table is this size: fresh stats, visibility map.
  'vacuum analyze chat_sessions',
  'vacuum analyze chat_messages',
];

// The statements the two routes run, captured from the repo functions themselves (never a stale copy).
async function routeStatements(): Promise<Array<{ label: string; st: Statement }>> {
  const [session] = await captureSql((db) => getSession(db, LONG_SESSION, USER));
  const [page] = await captureSql((db) => historyPage(db, LONG_SESSION, 51));
  const [list, count] = await captureSql((db) => listSessions(db, USER, { limit: 20, offset: 0 }));
  return [
    { label: 'history: getSession (ownership check)', st: session! },
    { label: 'history: historyPage (limit 50 + 1)', st: page! },
    { label: 'sessions: listSessions page (limit 20)', st: list! },
    { label: 'sessions: listSessions count', st: count! },
  ];
}

function getJson(agent: Agent, url: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = get(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${url}: HTTP ${res.statusCode} ${body.slice(0, 200)}`));
        else resolve(performance.now() - t0);
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
  });
}

async function time(
  agent: Agent,
  route: string,
  url: string,
  token: string,
  n: number,
): Promise<RouteLatency> {
  for (let i = 0; i < 50; i++) await getJson(agent, url, token); // warm-up: JIT, pool, buffer cache
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(await getJson(agent, url, token));
  return {
    route,
    requests: n,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: Math.max(...samples),
  };
}

export async function runQueries(opts: { serverJs: string; requests?: number }): Promise<QueryResults> {
  const db = await createBenchDb('queries');
  let server: Awaited<ReturnType<typeof startOurs>> | undefined;
  try {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const t0 = performance.now();
    for (const statement of SEED) await client.query(statement);
    const seedMs = performance.now() - t0;

    server = await startOurs({ db, serverJs: opts.serverJs, name: 'ours (queries)' });
    const token = await new SignJWT({ role: 'authenticated' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(USER)
      .setAudience('authenticated')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(BENCH_JWT_SECRET));
    // One request at a time: this measures latency, not throughput.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const n = opts.requests ?? 500;
    const routes = [
      await time(
        agent,
        `GET /chat/history/{id}?limit=50`,
        `${server.base}/api/v1/chat/history/${LONG_SESSION}?limit=50`,
        token,
        n,
      ),
      await time(
        agent,
        'GET /chat/sessions?limit=20',
        `${server.base}/api/v1/chat/sessions?limit=20`,
        token,
        n,
      ),
    ];
    agent.destroy();

    const explains: QueryResults['explains'] = [];
    for (const { label, st } of await routeStatements()) {
      const { text, params } = explainOf(st);
      const { rows } = await client.query(text, params);
      explains.push({ label, plan: rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n') });
    }
    await client.end();
    return { seedMs, routes, explains };
  } finally {
    await server?.stop();
    await db.drop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const serverJs = process.env.BENCH_SERVER_JS ?? `${ROOT}/dist/src/server.js`;
  const r = await runQueries({ serverJs });
  console.log(`seeded in ${(r.seedMs / 1000).toFixed(1)} s`);
  for (const x of r.routes) {
    console.log(
      `${x.route}: p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, max ${x.max.toFixed(1)} ms`,
    );
  }
  for (const e of r.explains) console.log(`\n-- ${e.label}\n${e.plan}`);
}
