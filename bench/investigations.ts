// Benchmark (not a test): 100,000 uploaded contracts end to end (POST → completed) on a real server.
// Run: node --import tsx bench/investigations.ts [contracts=100000]
// Knobs (env): BENCH_TARGETS=postgres,pglite (postgres needs the local server at 127.0.0.1:5432),
// BENCH_REPEATS=3 (a fresh server and database each time; the median is reported).
// Prints wall time (upload accepted, run, total), the server's peak RSS, and the ratio to a floor
// measured in the same run: JSON.parse of the same body plus the six detectors in memory.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createDetectorRun } from '../src/modules/investigations/detectors/index.js';
import { ANOMALY_TYPES, type Contract } from '../src/modules/investigations/types.js';
import { type BenchDb, createBenchDb } from './pgadmin.js';
import { freePort, spawnServer } from './procs.js';
import { fmt, median, sleep, table } from './stats.js';
import { ROOT } from './targets.js';

const total = Number(process.argv[2] ?? 100_000);
const targets = (process.env.BENCH_TARGETS ?? 'postgres,pglite').split(',').map((s) => s.trim());
const repeats = Math.max(1, Number(process.env.BENCH_REPEATS ?? 3));
const LIMIT_MS = 10_000;

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const OBJETOS = [
  'Aquisição de material de escritório',
  'Contratação de serviços de limpeza e conservação predial',
  'Serviços de vigilância patrimonial armada',
  'Aquisição de medicamentos',
  'Aquisição de equipamentos de informática',
  'Locação de veículos com motorista',
  'Fornecimento de combustível',
  'Serviços de manutenção predial preventiva e corretiva',
];
const MODALIDADES = [
  'Pregão',
  'Pregão',
  'Pregão',
  'Concorrência',
  'Dispensa de Licitação',
  'Inexigibilidade de Licitação',
];

/** 300 agencies, 5,000 suppliers (a few large), two years, log-normal prices, 5% with additions. */
function dataset(n: number): Contract[] {
  const rand = lcg(42);
  const base = OBJETOS.map((_, i) => 10_000 * 1.6 ** i);
  return Array.from({ length: n }, (_, i) => {
    const o = Math.floor(rand() * OBJETOS.length);
    const org = Math.floor(rand() * 300);
    const sup = Math.floor(rand() ** 2 * 5000);
    const vi = Math.round(base[o]! * Math.exp((rand() - 0.5) * 1.2) * 100) / 100;
    const day = Math.floor(rand() * 730);
    return {
      id: `bench-${i}`,
      numero: `${String(i % 99_999).padStart(5, '0')}/2024`,
      objeto: `${OBJETOS[o]} para a unidade ${org % 40}`,
      orgao: `Órgão federal ${org}`,
      orgao_codigo: String(20_000 + org),
      fornecedor: `Fornecedor ${sup} Ltda`,
      cnpj_fornecedor: `${String(10_000_000 + sup).slice(0, 8)}000${String(sup % 100).padStart(3, '0')}`,
      valor_inicial: vi,
      valor_final: rand() < 0.05 ? Math.round(vi * (1 + rand() * 0.6) * 100) / 100 : vi,
      data_assinatura: new Date(Date.UTC(2024, 0, 1) + day * 86_400_000).toISOString().slice(0, 10),
      modalidade: MODALIDADES[Math.floor(rand() * MODALIDADES.length)]!,
      situacao: 'Ativo',
    };
  });
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
}

async function runTarget(target: string, body: string): Promise<Outcome> {
  let db: BenchDb | null = null;
  let pgliteDir: string | null = null;
  const env: Record<string, string> = {};
  if (target === 'postgres') {
    db = await createBenchDb('inv');
    Object.assign(env, { DATABASE_URL: db.url, MIGRATE_ON_BOOT: 'false' });
  } else {
    pgliteDir = mkdtempSync(join(tmpdir(), 'bench-pglite-'));
    env.PGLITE_DIR = pgliteDir;
  }
  const port = await freePort();
  const server = await spawnServer({
    name: target,
    args: ['--import', 'tsx', 'src/server.ts'],
    cwd: ROOT,
    port,
    readyTimeoutMs: 60_000,
    env: { ...env, NODE_ENV: 'production', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
  });
  try {
    await sleep(500);
    const idleRss = peakRssMiB(server.pid);
    const t0 = performance.now();
    const res = await fetch(`${server.base}/api/v1/investigations/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
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

const contracts = dataset(total);
const body = JSON.stringify({ query: 'benchmark', data_source: 'upload', contracts });
console.log(
  `${fmt(total, 0)} contracts, ${fmt(body.length / 2 ** 20)} MiB of JSON; targets: ${targets.join(', ')}`,
);
const floor = floorMs(body);
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
      '< 10 s',
    ],
    rows,
  ),
);
if (failed) process.exitCode = 1;
