// Benchmark (not a test): the academy leaderboard's plans and timings at 100,000 ledger rows.
// Run: node --import tsx bench/academy.ts [rows=100000] [users=1000]  (needs Postgres at 127.0.0.1:5432)
// Captures the exact statements the board repo runs for each period and prints their
// EXPLAIN (ANALYZE, BUFFERS) as Markdown, ready for bench/RESULTS.md.
import { performance } from 'node:perf_hooks';
import { type SQL, sql } from 'drizzle-orm';
import { createDb, type Db, rowsOf } from '../src/db/client.js';
import * as board from '../src/modules/academy/board.repo.js';
import { createBenchDb } from './pgadmin.js';

const rows = Number(process.argv[2] ?? 100_000);
const users = Number(process.argv[3] ?? 1000);
const DAYS = 90;

const bench = await createBenchDb('academy');
await bench.migrate();
const handle = await createDb({ databaseUrl: bench.url, poolMax: 2 });
const db = handle.db;
const out: string[] = [];
try {
  // Users, then ledger rows spread evenly over 90 days, each user's chain consistent with its total.
  await db.execute(sql`
    insert into academy_users (user_id, username, main_track, enrolled_at)
    select 'bench-' || g, 'bench ' || g, (array['backend','frontend','ia','devops'])[1 + g % 4],
           now() - make_interval(days => ${DAYS + 1})
    from generate_series(1, ${users}) g`);
  await db.execute(sql`
    insert into academy_xp_transactions (user_id, amount, balance_after, source_type, source_id, created_at)
    select user_id, amount, sum(amount) over (partition by user_id order by at, g), 'mission', 'bench-' || g, at
    from (
      select g, 'bench-' || (1 + g % ${users}) as user_id, 1 + g % 7 as amount,
             now() - make_interval(secs => (${rows}::int - g) * ${(DAYS * 86400) / rows}::float8) as at
      from generate_series(1, ${rows}) g
    ) s order by at`);
  await db.execute(sql`
    update academy_users u set total_xp = t.s
    from (select user_id, sum(amount)::int as s from academy_xp_transactions group by user_id) t
    where t.user_id = u.user_id`);
  await db.execute(sql`vacuum analyze academy_xp_transactions`);
  await db.execute(sql`vacuum analyze academy_users`);
  const [{ version }] = rowsOf<{ version: string }>(await db.execute(sql`select version()`)) as [
    { version: string },
  ];
  out.push(
    `${rows.toLocaleString('en')} ledger rows over ${DAYS} days, ${users.toLocaleString('en')} users; ${version.split(',')[0]}.`,
    '',
  );

  for (const period of ['daily', 'weekly', 'monthly', 'all_time'] as const) {
    const captured: SQL[] = [];
    const spy = {
      execute: (q: SQL) => {
        captured.push(q);
        return db.execute(q);
      },
    } as unknown as Db;
    const t0 = performance.now();
    await board.leaderboard(spy, { period, limit: 10 });
    const ms = performance.now() - t0;
    out.push(
      `### \`GET /leaderboard?period=${period}\` (${ms.toFixed(1)} ms for the whole answer, cold)`,
      '',
    );
    for (const q of captured) {
      const plan = rowsOf<{ 'QUERY PLAN': string }>(
        await db.execute(sql`explain (analyze, buffers, costs off, timing off) ${q}`),
      ).map((r) => r['QUERY PLAN']);
      out.push('```', ...plan, '```', '');
    }
  }
  // Warm timings: median of 20 answers per period.
  out.push('| period | median ms (20 runs, warm) |', '|---|---|');
  for (const period of ['daily', 'weekly', 'monthly', 'all_time'] as const) {
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await board.leaderboard(db, { period, limit: 10 });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    out.push(`| ${period} | ${times[10]!.toFixed(2)} |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  await handle.close();
  await bench.drop();
}
