// Benchmark (not a test): 100,000 synthetic contracts through all six detectors; time and peak RSS.
// Run: node --import tsx bench/detectors.ts [contracts=100000] [pageSize=1000]
import { performance } from 'node:perf_hooks';
import { createDetectorRun } from '../src/modules/investigations/detectors/index.js';
import { ANOMALY_TYPES, type Contract } from '../src/modules/investigations/types.js';

const total = Number(process.argv[2] ?? 100_000);
const pageSize = Number(process.argv[3] ?? 1000);

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
  'Aquisição de gêneros alimentícios',
  'Serviços de telefonia móvel',
  'Licenciamento de software',
  'Aquisição de mobiliário',
  'Serviços de reprografia',
  'Consultoria técnica especializada',
  'Aquisição de material hospitalar',
  'Serviços de apoio administrativo',
];
const MODALIDADES = [
  'Pregão',
  'Pregão',
  'Pregão',
  'Concorrência',
  'Dispensa de Licitação',
  'Inexigibilidade de Licitação',
];

/** Pages of contracts made on the fly, as a paging source would deliver them: never all in memory. */
function* pages(seed: number): Generator<Contract[]> {
  const rand = lcg(seed);
  const base = OBJETOS.map((_, i) => 10_000 * 1.6 ** (i % 10));
  for (let done = 0; done < total; done += pageSize) {
    const page: Contract[] = [];
    for (let k = 0; k < Math.min(pageSize, total - done); k++) {
      const i = done + k;
      const o = Math.floor(rand() * OBJETOS.length);
      const org = Math.floor(rand() * 300);
      const sup = Math.floor(rand() ** 2 * 5000);
      const vi = Math.round(base[o]! * Math.exp((rand() - 0.5) * 1.2) * 100) / 100;
      const day = Math.floor(rand() * 730);
      const date = new Date(Date.UTC(2024, 0, 1) + day * 86_400_000).toISOString().slice(0, 10);
      page.push({
        id: `bench-${i}`,
        numero: `${String(i % 99_999).padStart(5, '0')}/2024`,
        objeto: `${OBJETOS[o]} para a unidade ${org % 40} - processo ${23000 + (i % 5000)}/${2024 + (day >= 365 ? 1 : 0)}`,
        orgao: `Órgão federal ${org}`,
        orgao_codigo: String(20_000 + org),
        fornecedor: `Fornecedor ${sup} Ltda`,
        cnpj_fornecedor: `${String(10_000_000 + sup).slice(0, 8)}000${String(sup % 100).padStart(3, '0')}`,
        valor_inicial: vi,
        valor_final: rand() < 0.05 ? Math.round(vi * (1 + rand() * 0.6) * 100) / 100 : vi,
        data_assinatura: date,
        modalidade: MODALIDADES[Math.floor(rand() * MODALIDADES.length)]!,
        situacao: 'Ativo',
      });
    }
    yield page;
  }
}

const startRss = process.memoryUsage().rss;

// Floor: the same pages generated and touched once (a sum), so the ratio isolates the detectors' cost.
let t0 = performance.now();
let checksum = 0;
for (const page of pages(42)) for (const c of page) checksum += c.valor_inicial + c.objeto.length;
const floorMs = performance.now() - t0;

t0 = performance.now();
const run = createDetectorRun(ANOMALY_TYPES);
let addMs = 0;
for (const page of pages(42)) {
  const a = performance.now();
  run.add(page);
  addMs += performance.now() - a;
}
global.gc?.();
const heapAfterAdd = process.memoryUsage().heapUsed;
const stepMs: Record<string, number> = {};
const found: Record<string, number> = {};
for (const step of run.steps()) {
  const a = performance.now();
  const findings = step.run();
  stepMs[step.type] = Math.round(performance.now() - a);
  found[step.type] = findings.length;
}
const wallMs = performance.now() - t0;
const detectMs = addMs + Object.values(stepMs).reduce((s, v) => s + v, 0);

console.log(`contracts: ${run.recordsSeen} (page size ${pageSize}), checksum ${checksum.toExponential(3)}`);
console.log(`floor (generate + touch pages): ${floorMs.toFixed(0)} ms`);
console.log(`add(): ${addMs.toFixed(0)} ms; steps: ${JSON.stringify(stepMs)}`);
console.log(
  `detectors total (add + steps): ${detectMs.toFixed(0)} ms = ${(detectMs / floorMs).toFixed(2)}× floor`,
);
console.log(`wall incl. generation: ${wallMs.toFixed(0)} ms`);
console.log(`findings: ${JSON.stringify(found)}`);
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
console.log(`heap held after add() (run with --expose-gc for a settled figure): ${mib(heapAfterAdd)}`);
console.log(`RSS at start: ${mib(startRss)}; peak RSS: ${mib(process.resourceUsage().maxRSS * 1024)}`);
