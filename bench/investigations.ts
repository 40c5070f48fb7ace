// Benchmark (not a test): 100,000 uploaded contracts end to end (POST → completed) on a real server.
// Run: node --import tsx bench/investigations.ts [contracts=100000]; `npm run bench:csv` is the CSV upload on the
// built server against Postgres (issue 16: 100,000 rows under 10 s, peak RSS reported).
// Knobs (env): BENCH_BODY=json|csv (csv: the Portal's export columns, Latin-1, ";", Brazilian numbers
// and dates, sent as text/csv; charset=iso-8859-1 and streamed through the CSV parser),
// BENCH_TARGETS=postgres,pglite (postgres needs the local server at 127.0.0.1:5432),
// BENCH_REPEATS=3 (a fresh server and database each time; the median is reported).
// Prints wall time (upload accepted, run, total), the server's peak RSS, and the ratio to a floor
// measured in the same run: JSON.parse of the same body plus the six detectors in memory.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import iconv from 'iconv-lite';
import { createDetectorRun } from '../src/modules/investigations/detectors/index.js';
import { ANOMALY_TYPES, type Contract } from '../src/modules/investigations/types.js';
import { type BenchDb, createBenchDb } from './pgadmin.js';
import { cpuSeconds, freePort, spawnServer } from './procs.js';
import { fmt, median, sleep, table } from './stats.js';
import { syntheticPages } from './synthetic.js';
import { ROOT } from './targets.js';

const total = Number(process.argv[2] ?? 100_000);
const targets = (process.env.BENCH_TARGETS ?? 'postgres,pglite').split(',').map((s) => s.trim());
const repeats = Math.max(1, Number(process.env.BENCH_REPEATS ?? 3));
const LIMIT_MS = 10_000;
// BENCH_SERVER=dist runs the built server (`npm run build` first), as `npm run bench:csv` does;
// BENCH_CPU_PROF=<dir> writes the server's V8 CPU profile there (where the time goes).
const SERVER =
  process.env.BENCH_SERVER === 'dist' ? ['dist/src/server.js'] : ['--import', 'tsx', 'src/server.ts'];
const PROFILE = process.env.BENCH_CPU_PROF
  ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
  : [];

/** The same synthetic contracts the detector benchmark pages through, all at once (an upload). */
function dataset(n: number): Contract[] {
  return [...syntheticPages(n, 1000)].flat();
}

/** Peak resident set of a process so far (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function floorMs(body: string): { ms: number; findings: number } {
  const t0 = performance.now();
  const { contracts } = JSON.parse(body) as { contracts: Contract[] };
  const run = createDetectorRun(ANOMALY_TYPES);
  for (let i = 0; i < contracts.length; i += 1000) run.add(contracts.slice(i, i + 1000));
  const findings = run.steps().reduce((n, s) => n + s.run().length, 0);
  return { ms: performance.now() - t0, findings };
}

interface Outcome {
  target: string;
  acceptedMs: number;
  totalMs: number;
  runMs: number;
  records: number;
  anomalies: number;
  idleRss: number;
  peakRss: number;
  /** The server's CPU (user + system) from the request to `completed`: less at the mercy of the machine's load than wall time. */
  cpuS: number;
}

async function runTarget(target: string, body: string | Buffer): Promise<Outcome> {
  let db: BenchDb | null = null;
  let pgliteDir: string | null = null;
  const env: Record<string, string> = {};
  if (target === 'postgres') {
    db = await createBenchDb('inv');
    Object.assign(env, { DATABASE_URL: db.url, MIGRATE_ON_BOOT: 'false' });
  } else {
    pgliteDir = mkdtempSync(join(tmpdir(), 'bench-pglite-'));
    env.PGLITE_DIR = pgliteDir;
    // NODE_ENV=production below: the embedded database is asked for explicitly.
    env.EMBEDDED = 'true';
  }
  const port = await freePort();
  const server = await spawnServer({
    name: target,
    args: [...PROFILE, ...SERVER],
    cwd: ROOT,
    port,
    readyTimeoutMs: 60_000,
    env: { ...env, NODE_ENV: 'production', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
  });
  try {
    await sleep(500);
    const idleRss = peakRssMiB(server.pid);
    const cpu0 = cpuSeconds(server.pid);
    const t0 = performance.now();
    const res = await fetch(`${server.base}/api/v1/investigations/`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
    });
    const acceptedMs = performance.now() - t0;
    if (res.status !== 202)
      throw new Error(`POST answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const { investigation_id: id } = (await res.json()) as { investigation_id: string };
    for (;;) {
      const s = (await (await fetch(`${server.base}/api/v1/investigations/${id}`)).json()) as Record<
        string,
        any
      >;
      if (s.status === 'completed' || s.status === 'failed' || s.status === 'cancelled') {
        if (s.status !== 'completed') throw new Error(`investigation ended ${s.status}: ${s.error}`);
        return {
          target,
          acceptedMs,
          totalMs: performance.now() - t0,
          runMs: s.processing_time_ms,
          records: s.records_processed,
          anomalies: s.anomalies_detected,
          idleRss,
          peakRss: peakRssMiB(server.pid),
          cpuS: cpuSeconds(server.pid) - cpu0,
        };
      }
      if (performance.now() - t0 > 120_000) throw new Error(`still ${s.status} after 120 s`);
      await sleep(25);
    }
  } catch (err) {
    throw new Error(`${target}: ${(err as Error).message}\n${server.tail()}`);
  } finally {
    await server.stop();
    await db?.drop();
    if (pgliteDir) rmSync(pgliteDir, { recursive: true, force: true });
  }
}

const asCsv = process.env.BENCH_BODY === 'csv';
const contentType = asCsv ? 'text/csv; charset=iso-8859-1' : 'application/json';

const br = (n: number) => n.toLocaleString('pt-BR', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const brDate = (iso: string) => `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`;
const quote = (v: string) => `"${v.replace(/"/g, '""')}"`;

/** The contracts as a Portal da Transparência export (plus an id column), encoded in Latin-1. */
function portalCsv(list: Contract[]): Buffer {
  const header = [
    'id',
    'Número do Contrato',
    'Objeto',
    'Modalidade Compra',
    'Situação Contrato',
    'Código Órgão',
    'Nome Órgão',
    'Data Assinatura Contrato',
    'Código Contratado',
    'Nome Contratado',
    'Valor Inicial Compra',
    'Valor Final Compra',
  ];
  const lines = [header.map(quote).join(';')];
  for (const c of list) {
    lines.push(
      [
        c.id,
        c.numero ?? '',
        c.objeto,
        c.modalidade,
        c.situacao ?? '',
        c.orgao_codigo,
        c.orgao,
        brDate(c.data_assinatura),
        c.cnpj_fornecedor,
        c.fornecedor,
        br(c.valor_inicial),
        br(c.valor_final),
      ]
        .map(quote)
        .join(';'),
    );
  }
  return iconv.encode(`${lines.join('\r\n')}\r\n`, 'latin1');
}

const contracts = dataset(total);
// The query selects: one that names nothing to narrow by keeps every contract.
const json = JSON.stringify({ query: 'investigue todos os contratos', data_source: 'upload', contracts });
const body = asCsv ? portalCsv(contracts) : json;
console.log(
  `${fmt(total, 0)} contracts, ${fmt(body.length / 2 ** 20)} MiB of ${asCsv ? 'Latin-1 CSV' : 'JSON'}; targets: ${targets.join(', ')}`,
);
const floor = floorMs(json);
console.log(
  `floor (JSON.parse + six detectors in memory): ${fmt(floor.ms, 0)} ms, ${floor.findings} findings`,
);

const rows: string[][] = [];
let failed = false;
for (const target of targets) {
  const runs: Outcome[] = [];
  for (let i = 0; i < repeats; i++) {
    runs.push(await runTarget(target, body));
    await sleep(2000); // let the database settle (checkpoint, dropped database) before the next run
  }
  const totals = runs.map((o) => o.totalMs);
  const mid = median(totals);
  const within = mid < LIMIT_MS;
  failed ||= !within || runs.some((o) => o.records !== total || o.anomalies !== floor.findings);
  rows.push([
    target,
    fmt(median(runs.map((o) => o.acceptedMs)), 0),
    fmt(median(runs.map((o) => o.runMs)), 0),
    fmt(mid, 0),
    `${fmt(Math.min(...totals), 0)}–${fmt(Math.max(...totals), 0)}`,
    `${fmt(mid / floor.ms, 1)}×`,
    fmt(runs[0]!.records, 0),
    String(runs[0]!.anomalies),
    fmt(median(runs.map((o) => o.idleRss)), 0),
    fmt(Math.max(...runs.map((o) => o.peakRss)), 0),
    fmt(median(runs.map((o) => o.cpuS)), 1),
    within ? 'yes' : 'NO',
  ]);
}
console.log(
  `medians of ${repeats} run(s); load average at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(
  table(
    [
      'target',
      'accepted ms',
      'run ms',
      'total ms',
      'range ms',
      'vs floor',
      'records',
      'anomalies',
      'idle RSS MiB',
      'peak RSS MiB',
      'server CPU s',
      '< 10 s',
    ],
    rows,
  ),
);
if (failed) process.exitCode = 1;
