import { performance } from 'node:perf_hooks';
type Contract = any;
const OBJETOS_X=1;
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


const body = JSON.stringify({ contracts: dataset(100000) });
const base = 'http://127.0.0.1:3999';
const t0 = performance.now();
const r = await fetch(`${base}/api/v1/investigations/`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
console.log('POST', r.status, Math.round(performance.now() - t0));
const id = (await r.json()).investigation_id;
for (;;) {
  const s = await (await fetch(`${base}/api/v1/investigations/${id}`)).json();
  if (s.status !== 'pending' && s.status !== 'running') { console.log('done', s.status, Math.round(performance.now() - t0), s.processing_time_ms); break; }
  await new Promise((res) => setTimeout(res, 25));
}
