// Synthetic contracts for the benchmarks: 300 agencies, 5,000 suppliers (a few large), two years,
// log-normal prices, 5% with additions; deterministic for a seed.
import type { Contract } from '../src/modules/investigations/types.js';

export function lcg(seed: number) {
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
export function* syntheticPages(total: number, pageSize: number, seed = 42): Generator<Contract[]> {
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
