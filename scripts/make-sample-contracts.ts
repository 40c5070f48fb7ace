// Generates src/modules/investigations/data/sample-contracts.ts: ~2,000 synthetic federal contracts with
// a fixed seed, plus planted anomalies of every type; refuses to write unless the detectors find exactly
// the planted ones. Run: npx tsx scripts/make-sample-contracts.ts
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createDetectorRun } from '../src/modules/investigations/detectors/index.js';
import { ANOMALY_TYPES, type AnomalyType, type Contract } from '../src/modules/investigations/types.js';

const OUT = fileURLToPath(new URL('../src/modules/investigations/data/sample-contracts.ts', import.meta.url));
const TOTAL = 2000;

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(20_240_601);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const between = (lo: number, hi: number) => lo + rand() * (hi - lo);
const cents = (x: number) => Math.round(x * 100) / 100;
function weighted<T>(items: readonly T[], weight: (t: T) => number): T {
  let r = rand() * items.reduce((s, t) => s + weight(t), 0);
  for (const t of items) {
    r -= weight(t);
    if (r < 0) return t;
  }
  return items[items.length - 1]!;
}

/** A CNPJ with valid check digits (Receita Federal's mod-11 rule), formatted. */
function cnpj(): string {
  const d = Array.from({ length: 8 }, () => Math.floor(rand() * 10)).concat([0, 0, 0, 1]);
  for (const weights of [
    [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2],
    [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2],
  ]) {
    const r = weights.reduce((s, w, i) => s + w * d[i]!, 0) % 11;
    d.push(r < 2 ? 0 : 11 - r);
  }
  const s = d.join('');
  return `${s.slice(0, 2)}.${s.slice(2, 5)}.${s.slice(5, 8)}/${s.slice(8, 12)}-${s.slice(12)}`;
}

const AGENCIES: Array<[code: string, name: string, weight: number]> = [
  ['36000', 'Ministério da Saúde', 14],
  ['26000', 'Ministério da Educação', 12],
  ['30000', 'Ministério da Justiça e Segurança Pública', 9],
  ['25000', 'Ministério da Fazenda', 6],
  ['44000', 'Ministério do Meio Ambiente e Mudança do Clima', 6],
  ['39000', 'Ministério dos Transportes', 6],
  ['20000', 'Presidência da República', 4],
  ['52121', 'Comando do Exército', 9],
  ['26232', 'Universidade Federal da Bahia', 6],
  ['36201', 'Fundação Oswaldo Cruz', 6],
  ['55000', 'Ministério do Desenvolvimento e Assistência Social, Família e Combate à Fome', 5],
  ['24000', 'Ministério da Ciência, Tecnologia e Inovação', 4],
  ['22000', 'Ministério da Agricultura e Pecuária', 5],
  ['32000', 'Ministério de Minas e Energia', 3],
  ['26238', 'Universidade Federal de Minas Gerais', 5],
  // Two small agencies carry planted anomalies; weight 0 keeps random contracts away from them.
  ['26431', 'Instituto Federal do Piauí', 0],
  ['44207', 'Instituto Chico Mendes de Conservação da Biodiversidade', 0],
];

const PREGAO = 'Pregão';
const CONCORRENCIA = 'Concorrência';
const DISPENSA = 'Dispensa de Licitação';
const INEXIGIBILIDADE = 'Inexigibilidade de Licitação';

interface Category {
  objeto: string;
  base: number;
  weight: number;
  /** [modalidade, weight] */
  modalidades: Array<[string, number]>;
  sector: string;
}
type CategoryRow = [objeto: string, base: number, weight: number, modalidades: string, sector: string];
// Values stay within 0.7–1.3 × base and away from the dispensa limit, so the random part is clean.
// Modalidades: P = Pregão, C = Concorrência, D = Dispensa, I = Inexigibilidade, one letter per tenth.
const CATEGORY_ROWS: CategoryRow[] = [
  ['Aquisição de material de escritório', 18_000, 12, 'PPPPPPDDDD', 'Comércio de Papelaria'],
  ['Contratação de serviços de limpeza e conservação predial', 850_000, 6, 'P', 'Serviços de Limpeza'],
  ['Serviços de vigilância patrimonial armada e desarmada', 1_400_000, 4, 'P', 'Segurança Patrimonial'],
  ['Aquisição de medicamentos', 320_000, 6, 'P', 'Distribuidora de Medicamentos'],
  ['Aquisição de equipamentos de informática', 420_000, 6, 'P', 'Tecnologia'],
  ['Locação de veículos com motorista', 560_000, 4, 'P', 'Locadora de Veículos'],
  ['Fornecimento de combustível para a frota oficial', 210_000, 5, 'P', 'Combustíveis'],
  ['Serviços de manutenção predial preventiva e corretiva', 380_000, 5, 'PPPC', 'Engenharia e Manutenção'],
  ['Aquisição de gêneros alimentícios', 95_000, 5, 'P', 'Alimentos'],
  ['Serviços de telefonia móvel', 150_000, 3, 'P', 'Telecomunicações'],
  ['Licenciamento de software de gestão', 260_000, 4, 'PPPPPPPIII', 'Software'],
  ['Aquisição de mobiliário de escritório', 130_000, 4, 'P', 'Móveis'],
  ['Serviços de impressão e reprografia', 110_000, 4, 'P', 'Gráfica'],
  ['Capacitação de servidores em gestão pública', 28_000, 6, 'IIIIIIIDDD', 'Educação Corporativa'],
  ['Consultoria técnica especializada em engenharia', 480_000, 3, 'C', 'Consultoria'],
  ['Aquisição de material hospitalar', 240_000, 5, 'P', 'Produtos Hospitalares'],
  ['Manutenção de aparelhos de ar-condicionado', 24_000, 5, 'P', 'Climatização'],
  ['Obras de reforma de edificação', 1_900_000, 2, 'C', 'Construções'],
  ['Fornecimento de água mineral', 14_000, 6, 'DDDDDDPPPP', 'Bebidas'],
  ['Serviços de apoio administrativo terceirizado', 2_200_000, 2, 'P', 'Terceirização'],
];
const LETTERS: Record<string, string> = { P: PREGAO, C: CONCORRENCIA, D: DISPENSA, I: INEXIGIBILIDADE };
const CATEGORIES: Category[] = CATEGORY_ROWS.map(([objeto, base, weight, mods, sector]) => {
  const counts = new Map<string, number>();
  for (const letter of mods) counts.set(LETTERS[letter]!, (counts.get(LETTERS[letter]!) ?? 0) + 1);
  return { objeto, base, weight, modalidades: [...counts], sector };
});
const SUFFIXES = [
  '',
  '',
  ' para a sede do órgão',
  ' para as unidades regionais',
  ' conforme termo de referência',
];
const NAME_WORDS = [
  'Alfa',
  'Horizonte',
  'Planalto',
  'Cerrado',
  'Atlântica',
  'Serra Azul',
  'Ipê',
  'Aurora',
  'Vale Verde',
  'Nova Era',
  'Pioneira',
  'Estrela do Sul',
  'Capital',
  'Litoral',
  'Sertaneja',
  'Guanabara',
  'Bandeirante',
  'Araucária',
  'Jequitibá',
  'Pantanal',
];
const FORMS = ['Ltda', 'Ltda', 'S.A.', 'ME', 'EPP'];

interface Supplier {
  cnpj: string;
  name: string;
}
const usedNames = new Set<string>();
function supplier(sector: string): Supplier {
  let name: string;
  do name = `${pick(NAME_WORDS)} ${sector} ${pick(FORMS)}`;
  while (usedNames.has(name));
  usedNames.add(name);
  return { cnpj: cnpj(), name };
}
const suppliersBySector = new Map(
  CATEGORIES.map((c) => [c.sector, Array.from({ length: 6 }, () => supplier(c.sector))]),
);

interface Draft extends Omit<Contract, 'id' | 'numero'> {
  plant?: string;
}
const DAY = 86_400_000;
const START = Date.UTC(2024, 0, 1);
const iso = (t: number) => new Date(t).toISOString().slice(0, 10);
/** A date in 2024–2025, December a little busier, as in real federal spending. */
function randomDate(): string {
  for (;;) {
    const t = START + Math.floor(rand() * 731) * DAY;
    if (new Date(t).getUTCMonth() === 11 || rand() < 1 / 1.3) return iso(t);
  }
}

function draft(agency: number, cat: Category, opts: Partial<Draft> = {}): Draft {
  const [code, name] = AGENCIES[agency]!;
  const sup = pick(suppliersBySector.get(cat.sector)!);
  const vi = cents(cat.base * between(0.7, 1.3));
  // A quarter of contracts had additions, always inside the 25% legal ceiling.
  const vf = rand() < 0.25 ? cents(vi * between(1.01, 1.2)) : vi;
  return {
    objeto: cat.objeto + pick(SUFFIXES),
    orgao: name,
    orgao_codigo: code,
    fornecedor: sup.name,
    cnpj_fornecedor: sup.cnpj,
    valor_inicial: vi,
    valor_final: vf,
    data_assinatura: randomDate(),
    modalidade: weighted(cat.modalidades, (m) => m[1])[0],
    situacao: rand() < 0.7 ? 'Ativo' : 'Encerrado',
    ...opts,
  };
}
const cat = (prefix: string) => CATEGORIES.find((c) => c.objeto.startsWith(prefix))!;
const agencyIndex = (code: string) => AGENCIES.findIndex((a) => a[0] === code);

const planted: Draft[] = [];
const plant = (agency: string, category: Category, plantName: string, opts: Partial<Draft>) =>
  planted.push(draft(agencyIndex(agency), category, { ...opts, plant: plantName }));

// price_outlier: two contracts far above their comparable group.
plant('36000', cat('Aquisição de material de escritório'), 'price:escritorio', {
  valor_inicial: 171_450,
  valor_final: 171_450,
  modalidade: PREGAO,
});
plant('52121', cat('Aquisição de equipamentos de informática'), 'price:informatica', {
  valor_inicial: 2_184_300,
  valor_final: 2_184_300,
  modalidade: PREGAO,
});

// supplier_concentration: one multi-service company takes most of a small institute's money.
const planalto = supplier('Serviços Integrados');
for (const [c, date] of [
  ['Contratação de serviços de limpeza', '2024-02-12'],
  ['Serviços de manutenção predial', '2024-05-20'],
  ['Contratação de serviços de limpeza', '2024-09-03'],
  ['Serviços de vigilância', '2025-01-27'],
  ['Serviços de manutenção predial', '2025-04-14'],
  ['Serviços de apoio administrativo', '2025-07-08'],
  ['Contratação de serviços de limpeza', '2025-10-21'],
] as const) {
  plant('26431', cat(c), 'concentration', {
    fornecedor: planalto.name,
    cnpj_fornecedor: planalto.cnpj,
    data_assinatura: date,
    modalidade: PREGAO,
  });
}
for (const [c, date] of [
  ['Aquisição de material de escritório', '2024-03-18'],
  ['Fornecimento de água mineral', '2024-08-05'],
  ['Capacitação de servidores', '2024-11-11'],
  ['Aquisição de gêneros alimentícios', '2025-03-10'],
  ['Serviços de telefonia', '2025-08-25'],
] as const) {
  plant('26431', cat(c), 'concentration:other', { data_assinatura: date });
}

// contract_splitting: three dispensas just under the 2024 limit (R$ 59.906,02) within 23 days.
const pecas = supplier('Elevadores');
for (const [value, date] of [
  [51_200, '2024-03-04'],
  [55_870.4, '2024-03-15'],
  [58_930.15, '2024-03-27'],
] as const) {
  planted.push({
    ...draft(agencyIndex('30000'), cat('Manutenção de aparelhos')),
    objeto: 'Aquisição de peças de reposição para elevadores',
    fornecedor: pecas.name,
    cnpj_fornecedor: pecas.cnpj,
    valor_inicial: value,
    valor_final: value,
    data_assinatura: date,
    modalidade: DISPENSA,
    plant: 'splitting',
  });
}

// value_increase: final values 42%, 68% and 105% above the initial ones.
for (const [agency, c, factor] of [
  ['39000', 'Serviços de manutenção predial', 1.42],
  ['26000', 'Contratação de serviços de limpeza', 1.68],
  ['22000', 'Consultoria técnica', 2.05],
] as const) {
  const d = draft(agencyIndex(agency), cat(c));
  planted.push({ ...d, valor_final: cents(d.valor_inicial * factor), plant: 'increase' });
}

// temporal_spike: a year-end rush, 26 extra contracts in December 2024 at one ministry.
for (let k = 0; k < 26; k++) {
  const c = weighted(CATEGORIES, (x) => x.weight);
  plant('44000', c, 'spike', {
    data_assinatura: `2024-12-${String(2 + Math.floor(rand() * 28)).padStart(2, '0')}`,
  });
}

// direct_contracting: a small agency spending most of its money without bidding.
const icmbio = (c: string, modalidade: string, date: string, name: string, extra: Partial<Draft> = {}) =>
  plant('44207', cat(c), name, { modalidade, data_assinatura: date, ...extra });
// Three different consultancies, so no single supplier dominates (that would be concentration too).
const consultorias = suppliersBySector.get('Consultoria')!;
for (const [k, date] of (['2024-02-07', '2024-07-22', '2025-02-17'] as const).entries()) {
  const s = consultorias[k]!;
  icmbio('Consultoria técnica', INEXIGIBILIDADE, date, 'direct', {
    fornecedor: s.name,
    cnpj_fornecedor: s.cnpj,
  });
}
icmbio('Licenciamento de software', INEXIGIBILIDADE, '2024-04-09', 'direct');
icmbio('Licenciamento de software', INEXIGIBILIDADE, '2025-05-05', 'direct');
icmbio('Capacitação de servidores', INEXIGIBILIDADE, '2024-10-14', 'direct');
icmbio('Capacitação de servidores', INEXIGIBILIDADE, '2025-09-15', 'direct');
icmbio('Fornecimento de água mineral', DISPENSA, '2024-06-03', 'direct');
icmbio('Fornecimento de água mineral', DISPENSA, '2025-06-30', 'direct');
icmbio('Aquisição de material de escritório', PREGAO, '2024-05-13', 'direct:other');
icmbio('Fornecimento de combustível', PREGAO, '2024-09-23', 'direct:other');
icmbio('Serviços de telefonia', PREGAO, '2025-01-13', 'direct:other');
icmbio('Aquisição de gêneros alimentícios', PREGAO, '2025-04-28', 'direct:other');
icmbio('Aquisição de mobiliário', PREGAO, '2025-11-10', 'direct:other');

const drafts: Draft[] = [...planted];
while (drafts.length < TOTAL) {
  const agency = AGENCIES.indexOf(weighted(AGENCIES, (a) => a[2]));
  drafts.push(
    draft(
      agency,
      weighted(CATEGORIES, (c) => c.weight),
    ),
  );
}
drafts.sort((a, b) =>
  a.data_assinatura < b.data_assinatura ? -1 : a.data_assinatura > b.data_assinatura ? 1 : 0,
);

const perAgencyYear = new Map<string, number>();
const contracts: Array<Contract & { plant?: string }> = drafts.map((d, i) => {
  const key = `${d.orgao_codigo}:${d.data_assinatura.slice(0, 4)}`;
  const seq = (perAgencyYear.get(key) ?? 0) + 1;
  perAgencyYear.set(key, seq);
  const { plant: plantName, ...rest } = d;
  return {
    id: `amostra-${String(i + 1).padStart(5, '0')}`,
    numero: `${String(seq).padStart(5, '0')}/${d.data_assinatura.slice(0, 4)}`,
    ...rest,
    plant: plantName,
  };
});

// --- check: the detectors must find exactly what was planted, nothing more, nothing less ---
const idsWhere = (f: (c: (typeof contracts)[number]) => boolean) => contracts.filter(f).map((c) => c.id);
const NOTES: Record<string, [AnomalyType, string]> = {
  'price:escritorio': [
    'price_outlier',
    'material de escritório a quase 10× a mediana dos pregões comparáveis',
  ],
  'price:informatica': ['price_outlier', 'equipamentos de informática a mais de 5× a mediana'],
  concentration: [
    'supplier_concentration',
    'um fornecedor com quase todo o valor contratado pelo Instituto Federal do Piauí',
  ],
  splitting: [
    'contract_splitting',
    'três dispensas logo abaixo do limite de 2024 em 23 dias, mesmo órgão e fornecedor',
  ],
  increase: ['value_increase', 'valor final acima de 125% do inicial'],
  direct: ['direct_contracting', 'ICMBio: a maior parte do valor por inexigibilidade e dispensa'],
};
const expected: Array<{ type: AnomalyType; contract_ids: string[]; note: string }> = [];
for (const [name, [type, note]] of Object.entries(NOTES)) {
  const ids = idsWhere((c) => c.plant === name);
  if (type === 'price_outlier' || type === 'value_increase') {
    for (const id of ids) expected.push({ type, contract_ids: [id], note });
  } else {
    expected.push({ type, contract_ids: ids, note });
  }
}
expected.push({
  type: 'temporal_spike',
  contract_ids: idsWhere((c) => c.orgao_codigo === '44000' && c.data_assinatura.startsWith('2024-12')),
  note: 'corrida de fim de ano: dezembro de 2024 no Ministério do Meio Ambiente',
});

const run = createDetectorRun(ANOMALY_TYPES);
run.add(contracts.map(({ plant: _plant, ...c }) => c));
const key = (type: string, ids: string[]) => `${type} ${[...ids].sort().join(',')}`;
const found = new Set(run.steps().flatMap((s) => s.run().map((f) => key(f.type, f.contract_ids))));
const wanted = new Set(expected.map((e) => key(e.type, e.contract_ids)));
const extra = [...found].filter((k) => !wanted.has(k));
const missing = [...wanted].filter((k) => !found.has(k));
if (extra.length > 0 || missing.length > 0) {
  console.error('the detectors do not find exactly the planted anomalies; not writing.');
  for (const k of missing) console.error(`  missing: ${k}`);
  for (const k of extra) console.error(`  extra:   ${k}`);
  process.exit(1);
}

// --- emit: lookup tables plus one short row per contract, so the module stays small and readable ---
const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const table = <T>(values: T[]) => {
  const index = new Map<T, number>();
  for (const v of values) if (!index.has(v)) index.set(v, index.size);
  return index;
};
const objetos = table(contracts.map((c) => c.objeto));
const agencies = table(contracts.map((c) => `${c.orgao_codigo}|${c.orgao}`));
const suppliers = table(contracts.map((c) => `${c.cnpj_fornecedor}|${c.fornecedor}`));
const modalidades = table(contracts.map((c) => c.modalidade));
const situacoes = table(contracts.map((c) => c.situacao ?? ''));
const pair = (v: string) => {
  const [a, b] = v.split('|') as [string, string];
  return `  [${q(a)}, ${q(b)}],`;
};

const lines = [
  '// Bundled offline dataset: SYNTHETIC federal contracts (fictitious suppliers and CNPJs) with planted',
  '// anomalies, generated by scripts/make-sample-contracts.ts with a fixed seed. Do not edit by hand.',
  "import type { AnomalyType, Contract } from '../types.js';",
  '',
  '/** [orgao_codigo, orgao] */',
  'const AGENCIES: ReadonlyArray<readonly [string, string]> = [',
  ...[...agencies.keys()].map(pair),
  '];',
  '',
  '/** [cnpj_fornecedor, fornecedor] — invented companies; any match with a real CNPJ is coincidence. */',
  'const SUPPLIERS: ReadonlyArray<readonly [string, string]> = [',
  ...[...suppliers.keys()].map(pair),
  '];',
  '',
  'const OBJETOS: readonly string[] = [',
  ...[...objetos.keys()].map((o) => `  ${q(o)},`),
  '];',
  '',
  `const MODALIDADES: readonly string[] = [${[...modalidades.keys()].map(q).join(', ')}];`,
  `const SITUACOES: readonly string[] = [${[...situacoes.keys()].map(q).join(', ')}];`,
  '',
  '/** [objeto, agency, supplier, valor_inicial, valor_final, data_assinatura, modalidade, situacao, numero] */',
  'type Row = readonly [number, number, number, number, number, string, number, number, number];',
  '',
  'const ROWS: readonly Row[] = [',
  ...contracts.map(
    (c) =>
      `  [${objetos.get(c.objeto)}, ${agencies.get(`${c.orgao_codigo}|${c.orgao}`)}, ` +
      `${suppliers.get(`${c.cnpj_fornecedor}|${c.fornecedor}`)}, ${c.valor_inicial}, ${c.valor_final}, ` +
      `${q(c.data_assinatura)}, ${modalidades.get(c.modalidade)}, ${situacoes.get(c.situacao ?? '')}, ` +
      `${Number(c.numero!.slice(0, 5))}],`,
  ),
  '];',
  '',
  '/** The bundled contracts, in signature-date order; ids are "amostra-00001" onwards. */',
  'export const SAMPLE_CONTRACTS: readonly Contract[] = ROWS.map((r, i) => {',
  '  const [orgaoCodigo, orgao] = AGENCIES[r[1]]!;',
  '  const [cnpj, fornecedor] = SUPPLIERS[r[2]]!;',
  '  return {',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: this is source code for the generated module
  "    id: `amostra-${String(i + 1).padStart(5, '0')}`,",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: this is source code for the generated module
  "    numero: `${String(r[8]).padStart(5, '0')}/${r[5].slice(0, 4)}`,",
  '    objeto: OBJETOS[r[0]]!,',
  '    orgao,',
  '    orgao_codigo: orgaoCodigo,',
  '    fornecedor,',
  '    cnpj_fornecedor: cnpj,',
  '    valor_inicial: r[3],',
  '    valor_final: r[4],',
  '    data_assinatura: r[5],',
  '    modalidade: MODALIDADES[r[6]]!,',
  '    situacao: SITUACOES[r[7]] || null,',
  '  };',
  '});',
  '',
  'export interface PlantedAnomaly {',
  '  type: AnomalyType;',
  '  contract_ids: string[];',
  '  note: string;',
  '}',
  '',
  '/** What the detectors must find in SAMPLE_CONTRACTS, exactly (the generator checked it). */',
  'export const SAMPLE_PLANTED: readonly PlantedAnomaly[] = [',
  ...expected.map(
    (e) =>
      `  { type: ${q(e.type)}, contract_ids: [${e.contract_ids.map(q).join(', ')}], note: ${q(e.note)} },`,
  ),
  '];',
  '',
];
writeFileSync(OUT, lines.join('\n'));
const fmt = spawnSync('npx', ['biome', 'format', '--write', OUT], { stdio: 'inherit' });
if (fmt.status !== 0) process.exit(fmt.status ?? 1);
console.log(`wrote ${contracts.length} contracts, ${expected.length} planted anomalies to ${OUT}`);
