import { describe, expect, it } from 'vitest';
import { SAMPLE_CONTRACTS, SAMPLE_PLANTED } from '../src/modules/investigations/data/sample-contracts.js';
import {
  createDetectorRun,
  type DetectorOptions,
  findingId,
} from '../src/modules/investigations/detectors/index.js';
import {
  ANOMALY_TYPES,
  type AnomalyType,
  type Contract,
  type Finding,
} from '../src/modules/investigations/types.js';

let seq = 0;
function contract(p: Partial<Contract> = {}): Contract {
  seq++;
  const vi = p.valor_inicial ?? 20_000;
  return {
    id: `c${seq}`,
    numero: null,
    objeto: 'Aquisição de material de escritório',
    orgao: 'Órgão Um',
    orgao_codigo: '10001',
    fornecedor: 'Fornecedor Um Ltda',
    cnpj_fornecedor: '11.111.111/0001-11',
    valor_inicial: vi,
    valor_final: vi,
    data_assinatura: '2024-05-10',
    modalidade: 'Pregão',
    situacao: 'Ativo',
    ...p,
  };
}

function detect(
  types: readonly AnomalyType[],
  contracts: Contract[],
  opts?: Partial<DetectorOptions>,
): Finding[] {
  const run = createDetectorRun(types, opts);
  run.add(contracts);
  return run.steps().flatMap((s) => s.run());
}

const signature = (f: { type: string; contract_ids: string[] }) =>
  `${f.type} ${[...f.contract_ids].sort().join(',')}`;

const supplierCnpj = (n: number) =>
  `${String(n).padStart(2, '0')}.222.333/0001-${String(n).padStart(2, '0')}`;
const CATEGORIES = [
  { objeto: 'Aquisição de material de escritório', base: 20_000, modalidade: 'Pregão' },
  { objeto: 'Contratação de serviços de limpeza e conservação', base: 300_000, modalidade: 'Pregão' },
  { objeto: 'Aquisição de equipamentos de informática', base: 120_000, modalidade: 'Pregão' },
  { objeto: 'Fornecimento de água mineral', base: 8_000, modalidade: 'Dispensa de Licitação' },
];
const ymd = (year: number, month0: number, day: number) =>
  `${year}-${String(month0 + 1).padStart(2, '0')}-${String(day).padStart(2, '0')}`;

/** Four agencies, 24 months, four contracts a month each: no anomaly of any kind. */
function cleanDataset(): Contract[] {
  const out: Contract[] = [];
  for (let a = 1; a <= 4; a++) {
    for (let m = 0; m < 24; m++) {
      for (let k = 0; k < 4; k++) {
        const cat = CATEGORIES[k]!;
        const vi = Math.round(cat.base * (0.85 + (0.3 * ((a * 7 + m * 3 + k * 5) % 11)) / 10) * 100) / 100;
        const s = (a + m + k) % 8;
        out.push(
          contract({
            id: `clean-${a}-${m}-${k}`,
            objeto: cat.objeto,
            orgao: `Órgão ${a}`,
            orgao_codigo: `1000${a}`,
            fornecedor: `Fornecedor ${s} Ltda`,
            cnpj_fornecedor: supplierCnpj(s),
            valor_inicial: vi,
            valor_final: (a + m + k) % 5 === 0 ? Math.round(vi * 110) / 100 : vi,
            data_assinatura: ymd(2024 + Math.floor(m / 12), m % 12, 3 + k * 7),
            modalidade: cat.modalidade,
          }),
        );
      }
    }
  }
  return out;
}

/** The clean dataset plus one planted anomaly of every type, and what the detectors must say. */
function plantedDataset(): {
  contracts: Contract[];
  expected: Array<{ type: AnomalyType; contract_ids: string[] }>;
} {
  const contracts = cleanDataset();
  const agency = (n: number) => ({ orgao: `Órgão ${n}`, orgao_codigo: `1000${n}` });
  const add = (id: string, p: Partial<Contract>) => contracts.push(contract({ id, ...p }));

  add('P-price', {
    ...agency(1),
    valor_inicial: 100_000,
    data_assinatura: '2024-06-12',
    cnpj_fornecedor: supplierCnpj(3),
  });

  const concentrated = { fornecedor: 'Concentra Serviços Ltda', cnpj_fornecedor: '55.555.555/0001-55' };
  for (let i = 1; i <= 4; i++) {
    add(`P-conc-${i}`, {
      ...agency(5),
      ...concentrated,
      objeto: CATEGORIES[1]!.objeto,
      valor_inicial: 300_000,
      data_assinatura: ymd(2024, i * 2, 5),
    });
  }
  add('P-conc-other-1', { ...agency(5), data_assinatura: '2025-02-05', cnpj_fornecedor: supplierCnpj(1) });
  add('P-conc-other-2', { ...agency(5), data_assinatura: '2025-05-05', cnpj_fornecedor: supplierCnpj(2) });

  const elevators = {
    fornecedor: 'Elevadores Ltda',
    cnpj_fornecedor: '66.666.666/0001-66',
    modalidade: 'Dispensa de Licitação',
  };
  const pecas = 'Aquisição de peças para elevadores';
  add('P-split-1', {
    ...agency(2),
    ...elevators,
    objeto: pecas,
    valor_inicial: 50_000,
    data_assinatura: '2024-04-02',
  });
  add('P-split-2', {
    ...agency(2),
    ...elevators,
    objeto: pecas,
    valor_inicial: 55_000,
    data_assinatura: '2024-04-20',
  });

  add('P-inc', {
    ...agency(3),
    objeto: 'Reforma do auditório',
    valor_inicial: 100_000,
    valor_final: 140_000,
    modalidade: 'Concorrência',
    data_assinatura: '2025-03-14',
  });

  for (let i = 0; i < 16; i++) {
    add(`P-spike-${i}`, {
      ...agency(4),
      fornecedor: `Fornecedor ${i % 8} Ltda`,
      cnpj_fornecedor: supplierCnpj(i % 8),
      data_assinatura: ymd(2024, 11, 1 + i),
    });
  }

  for (let i = 1; i <= 4; i++) {
    add(`P-direct-${i}`, {
      ...agency(6),
      objeto: 'Consultoria jurídica especializada',
      fornecedor: `Consultoria ${i}`,
      cnpj_fornecedor: `7${i}.777.777/0001-7${i}`,
      valor_inicial: 200_000,
      modalidade: 'Inexigibilidade de Licitação',
      data_assinatura: ymd(2024, i * 2, 8),
    });
  }
  add('P-direct-other-1', { ...agency(6), data_assinatura: '2025-01-08' });
  add('P-direct-other-2', { ...agency(6), data_assinatura: '2025-06-08', cnpj_fornecedor: supplierCnpj(4) });

  const decemberAtAgency4 = contracts
    .filter((c) => c.orgao_codigo === '10004' && c.data_assinatura.startsWith('2024-12'))
    .map((c) => c.id);
  return {
    contracts,
    expected: [
      { type: 'price_outlier', contract_ids: ['P-price'] },
      { type: 'supplier_concentration', contract_ids: ['P-conc-1', 'P-conc-2', 'P-conc-3', 'P-conc-4'] },
      { type: 'contract_splitting', contract_ids: ['P-split-1', 'P-split-2'] },
      { type: 'value_increase', contract_ids: ['P-inc'] },
      { type: 'temporal_spike', contract_ids: decemberAtAgency4 },
      { type: 'direct_contracting', contract_ids: ['P-direct-1', 'P-direct-2', 'P-direct-3', 'P-direct-4'] },
    ],
  };
}

describe('the six detectors on fixed data', () => {
  it('find nothing in a clean dataset', () => {
    const clean = cleanDataset();
    expect(clean).toHaveLength(384);
    expect(detect(ANOMALY_TYPES, clean)).toEqual([]);
  });

  it('find each planted anomaly with exactly its contracts, and nothing else', () => {
    const { contracts, expected } = plantedDataset();
    expect(expected.find((e) => e.type === 'temporal_spike')!.contract_ids).toHaveLength(20);
    const findings = detect(ANOMALY_TYPES, contracts);
    expect(findings.map(signature).sort()).toEqual(expected.map(signature).sort());
  });

  it('every finding is checkable: bounded scores, Portuguese text with the numbers, evidence', () => {
    const findings = detect(ANOMALY_TYPES, plantedDataset().contracts);
    for (const f of findings) {
      expect(f.severity).toBeGreaterThanOrEqual(0);
      expect(f.severity).toBeLessThanOrEqual(1);
      expect(f.confidence).toBeGreaterThan(0);
      expect(f.confidence).toBeLessThanOrEqual(1);
      expect(f.title.length).toBeGreaterThan(10);
      expect(f.explanation).toMatch(/R\$ \d/);
      expect(f.evidence.contracts_total).toBe(f.contract_ids.length);
      expect(f.id).toBe(findingId(f.type, f.contract_ids));
    }
    const split = findings.find((f) => f.type === 'contract_splitting')!;
    expect(split.explanation).toContain('R$ 59.906,02');
    expect(split.explanation).toContain('R$ 105.000,00');
    expect(split.evidence).toMatchObject({ threshold: 59_906.02, total_value: 105_000, span_days: 18 });
    const increase = findings.find((f) => f.type === 'value_increase')!;
    expect(increase.explanation).toContain('40,0%');
    expect(increase.evidence).toMatchObject({ valor_inicial: 100_000, valor_final: 140_000, increase: 0.4 });
  });

  it('gives the same findings in the same order whatever the paging and arrival order', () => {
    const { contracts } = plantedDataset();
    const once = detect(ANOMALY_TYPES, contracts);
    const run = createDetectorRun(ANOMALY_TYPES);
    const reversed = [...contracts].reverse();
    for (let i = 0; i < reversed.length; i += 37) run.add(reversed.slice(i, i + 37));
    const paged = run.steps().flatMap((s) => s.run());
    expect(paged).toEqual(once);
    for (const step of createDetectorRun(ANOMALY_TYPES).steps()) expect(step.run()).toEqual([]);
  });

  it('orders each step by severity, then id', () => {
    const findings = detect(
      ['value_increase'],
      [
        contract({ id: 'b', valor_inicial: 100, valor_final: 130 }),
        contract({ id: 'a', valor_inicial: 100, valor_final: 130 }),
        contract({ id: 'z', valor_inicial: 100, valor_final: 300 }),
      ],
    );
    expect(findings.map((f) => f.contract_ids)).toHaveLength(3);
    const [top, x, y] = findings;
    expect(top!.contract_ids).toEqual(['z']);
    expect(x!.severity).toBe(y!.severity);
    expect(x!.id < y!.id).toBe(true);
  });

  it('runs one step per requested type, in the requested order, and counts each contract once', () => {
    const run = createDetectorRun(['temporal_spike', 'price_outlier', 'temporal_spike']);
    expect(run.steps().map((s) => s.type)).toEqual(['temporal_spike', 'price_outlier']);
    const c = contract();
    run.add([c, c]);
    run.add([c]);
    expect(run.recordsSeen).toBe(1);
    expect(() => createDetectorRun(['nope' as AnomalyType])).toThrow(/unknown anomaly type/);
  });

  it('finds nothing in one contract or in zero-value contracts', () => {
    expect(
      detect(ANOMALY_TYPES, [contract({ valor_inicial: 1_000_000, valor_final: 9_000_000 })]).map(
        (f) => f.type,
      ),
    ).toEqual(['value_increase']);
    const zeros = Array.from({ length: 12 }, (_, i) =>
      contract({ valor_inicial: 0, valor_final: 0, data_assinatura: ymd(2024, i, 1) }),
    );
    expect(detect(ANOMALY_TYPES, zeros)).toEqual([]);
  });
});

describe('price_outlier', () => {
  const group = (values: number[], p: Partial<Contract> = {}) =>
    values.map((v) => contract({ valor_inicial: v, ...p }));

  it('flags a price far above comparable contracts with the group numbers', () => {
    const data = group([10_000, 11_000, 9_500, 10_500, 10_200, 9_800, 60_000]);
    const [f, ...rest] = detect(['price_outlier'], data);
    expect(rest).toEqual([]);
    expect(f!.contract_ids).toEqual([data[6]!.id]);
    expect(f!.evidence).toMatchObject({ group_size: 7, group_median: 10_200, ratio_to_median: 5.88 });
    expect(f!.evidence.modified_z as number).toBeGreaterThan(3.5);
    expect(f!.explanation).toContain('R$ 60.000,00');
  });

  it('compares only the same object and modalidade, never a global scale', () => {
    const office = group([10_000, 11_000, 9_500, 10_500, 10_200]);
    const works = group([900_000, 1_000_000, 1_100_000, 950_000, 1_050_000], {
      objeto: 'Obras de pavimentação',
    });
    expect(detect(['price_outlier'], [...office, ...works])).toEqual([]);
    const otherModalidade = group([60_000], { modalidade: 'Concorrência' });
    expect(detect(['price_outlier'], [...office, ...otherModalidade])).toEqual([]);
  });

  it('needs a minimum group size and a real multiple of the median', () => {
    expect(detect(['price_outlier'], group([10_000, 10_100, 9_900, 90_000]))).toEqual([]);
    expect(
      detect(['price_outlier'], group([10_000, 10_100, 9_900, 90_000]), { minGroupSize: 4 }),
    ).toHaveLength(1);
    // A tight group makes a 50% difference a huge z-score; it still is not twice the median.
    expect(detect(['price_outlier'], group([100, 101, 100, 99, 100, 101, 150]))).toEqual([]);
  });

  it('falls back to the mean absolute deviation when most prices are identical', () => {
    const data = group([5_000, 5_000, 5_000, 5_000, 5_000, 5_000, 20_000]);
    expect(detect(['price_outlier'], data).map((f) => f.contract_ids)).toEqual([[data[6]!.id]]);
  });
});

describe('supplier_concentration', () => {
  const agencyOf = (shares: Array<[string, number]>) =>
    shares.map(([cnpj, v]) => contract({ cnpj_fornecedor: cnpj, fornecedor: `F ${cnpj}`, valor_inicial: v }));

  it('flags one supplier holding more than half of an agency’s value', () => {
    const data = agencyOf([
      ['1', 300],
      ['1', 300],
      ['2', 100],
      ['3', 100],
      ['4', 100],
    ]);
    const [f] = detect(['supplier_concentration'], data);
    expect(f!.contract_ids.sort()).toEqual([data[0]!.id, data[1]!.id].sort());
    expect(f!.evidence).toMatchObject({
      share: 0.6667,
      supplier_contracts: 2,
      agency_contracts: 5,
      agency_suppliers: 4,
    });
  });

  it('ignores agencies with few contracts, single big contracts and shares at or under the limit', () => {
    expect(
      detect(
        ['supplier_concentration'],
        agencyOf([
          ['1', 300],
          ['1', 300],
          ['2', 100],
          ['3', 100],
        ]),
      ),
    ).toEqual([]);
    expect(
      detect(
        ['supplier_concentration'],
        agencyOf([
          ['1', 900],
          ['2', 100],
          ['3', 100],
          ['4', 100],
          ['5', 100],
        ]),
      ),
    ).toEqual([]);
    expect(
      detect(
        ['supplier_concentration'],
        agencyOf([
          ['1', 250],
          ['1', 250],
          ['2', 200],
          ['3', 200],
          ['4', 100],
        ]),
      ),
    ).toEqual([]);
  });
});

describe('contract_splitting', () => {
  const dispensa = (v: number, date: string, p: Partial<Contract> = {}) =>
    contract({ valor_inicial: v, data_assinatura: date, modalidade: 'Dispensa de Licitação', ...p });

  it('flags contracts just under the year’s dispensa limit whose sum exceeds it', () => {
    const data = [
      dispensa(50_000, '2024-03-01'),
      dispensa(52_000, '2024-03-25'),
      dispensa(51_000, '2024-06-01'),
    ];
    const [f, ...rest] = detect(['contract_splitting'], data);
    expect(rest).toEqual([]);
    expect(f!.contract_ids).toEqual([data[0]!.id, data[1]!.id]);
    expect(f!.evidence).toMatchObject({ threshold: 59_906.02, threshold_year: 2024, total_value: 102_000 });
  });

  it('uses the limit in force in the year of signature (2025: R$ 62.725,59)', () => {
    const in2025 = [dispensa(61_000, '2025-03-01'), dispensa(61_500, '2025-03-10')];
    expect(detect(['contract_splitting'], in2025)).toHaveLength(1);
    const in2024 = [dispensa(61_000, '2024-03-01'), dispensa(61_500, '2024-03-10')];
    expect(detect(['contract_splitting'], in2024)).toEqual([]);
    // A caller's single threshold replaces the per-year table.
    expect(detect(['contract_splitting'], in2025, { biddingThreshold: 100_000 })).toEqual([]);
  });

  it('ignores contracts outside the window, with other suppliers, or at the limit itself', () => {
    expect(
      detect(['contract_splitting'], [dispensa(50_000, '2024-03-01'), dispensa(52_000, '2024-04-01')]),
    ).toEqual([]);
    expect(
      detect(
        ['contract_splitting'],
        [dispensa(50_000, '2024-03-01'), dispensa(52_000, '2024-03-05', { cnpj_fornecedor: '2' })],
      ),
    ).toEqual([]);
    expect(
      detect(['contract_splitting'], [dispensa(59_906.02, '2024-03-01'), dispensa(50_000, '2024-03-05')]),
    ).toEqual([]);
    expect(
      detect(['contract_splitting'], [dispensa(40_000, '2024-03-01'), dispensa(45_000, '2024-03-05')]),
    ).toEqual([]);
  });
});

describe('value_increase', () => {
  it('flags a final value more than 25% above the initial, not exactly 25%', () => {
    const over = contract({ valor_inicial: 1000, valor_final: 1250.01 });
    const at = contract({ valor_inicial: 1000, valor_final: 1250 });
    const zero = contract({ valor_inicial: 0, valor_final: 500 });
    const found = detect(['value_increase'], [over, at, zero]);
    expect(found.map((f) => f.contract_ids)).toEqual([[over.id]]);
    expect(found[0]!.explanation).toContain('art. 125');
  });
});

describe('temporal_spike', () => {
  // Values drift a little month to month, as real ones do; a flat series has no spread to measure.
  const monthly = (perMonth: (m: number) => number) =>
    Array.from({ length: 12 }, (_, m) =>
      Array.from({ length: perMonth(m) }, (_, k) =>
        contract({ data_assinatura: ymd(2024, m, 1 + k), valor_inicial: 20_000 + m * 1_000 }),
      ),
    ).flat();

  it('flags a year-end rush far above the agency’s usual month', () => {
    const data = monthly((m) => (m === 11 ? 18 : 3));
    const [f, ...rest] = detect(['temporal_spike'], data);
    expect(rest).toEqual([]);
    expect(f!.contract_ids).toHaveLength(18);
    expect(f!.evidence).toMatchObject({
      month: '2024-12',
      year_end: true,
      month_contracts: 18,
      baseline_contracts_per_month: 3,
    });
    expect(f!.title).toContain('Corrida de fim de ano');
  });

  it('flags a month whose value is far above the usual month even at a normal count', () => {
    const data = monthly((m) => (m === 4 ? 6 : 5));
    for (const c of data.filter((c) => c.data_assinatura.startsWith('2024-05'))) {
      c.valor_inicial = 400_000;
      c.valor_final = 400_000;
    }
    const [f] = detect(['temporal_spike'], data);
    expect(f!.evidence).toMatchObject({ month: '2024-05', triggers: ['value'], year_end: false });
  });

  it('measures the baseline over every month of the period, quiet months included', () => {
    const data = monthly((m) => (m === 11 ? 14 : m >= 8 ? 5 : 0));
    // Another agency's steady year sets the period: this one was quiet for eight of its months.
    const steady = monthly(() => 2).map((c) => ({
      ...c,
      id: `s-${c.id}`,
      orgao_codigo: '20002',
      orgao: 'Órgão Dois',
    }));
    const found = detect(['temporal_spike'], [...data, ...steady]);
    expect(found.map((f) => f.evidence.month)).toEqual(['2024-12']);
    expect(found[0]!.evidence).toMatchObject({ baseline_contracts_per_month: 1, months_analyzed: 12 });
  });

  it('leaves steady agencies, short periods and small counts alone', () => {
    expect(
      detect(
        ['temporal_spike'],
        monthly(() => 4),
      ),
    ).toEqual([]);
    expect(
      detect(
        ['temporal_spike'],
        monthly((m) => (m === 11 ? 4 : m < 3 ? 1 : 0)),
      ),
    ).toEqual([]);
    const short = monthly((m) => (m === 4 ? 20 : m < 5 ? 2 : 0));
    expect(detect(['temporal_spike'], short)).toEqual([]);
  });
});

describe('direct_contracting', () => {
  it('flags an agency spending most of its value without bidding, naming those contracts', () => {
    const direct = [
      contract({ modalidade: 'Inexigibilidade de Licitação', valor_inicial: 500 }),
      contract({ modalidade: 'Dispensa de Licitação', valor_inicial: 300 }),
    ];
    const others = [1, 2, 3].map(() => contract({ valor_inicial: 100 }));
    const [f] = detect(['direct_contracting'], [...direct, ...others]);
    expect(f!.contract_ids.sort()).toEqual(direct.map((c) => c.id).sort());
    expect(f!.evidence).toMatchObject({
      value_share: 0.7273,
      dispensa_contracts: 1,
      inexigibilidade_contracts: 1,
    });
  });

  it('flags a high count share too, and leaves small or mostly competitive agencies alone', () => {
    const many = Array.from({ length: 9 }, () =>
      contract({ modalidade: 'Dispensa de Licitação', valor_inicial: 10 }),
    );
    expect(detect(['direct_contracting'], [...many, contract({ valor_inicial: 1000 })])).toHaveLength(1);
    const small = [
      contract({ modalidade: 'Dispensa de Licitação' }),
      contract({ modalidade: 'Dispensa de Licitação' }),
      contract(),
    ];
    expect(detect(['direct_contracting'], small)).toEqual([]);
    const competitive = [
      contract({ modalidade: 'Dispensa de Licitação', valor_inicial: 100 }),
      contract({ modalidade: 'Dispensa de Licitação', valor_inicial: 100 }),
      ...[1, 2, 3, 4].map(() => contract()),
    ];
    expect(detect(['direct_contracting'], competitive)).toEqual([]);
  });

  it('caps the listed contracts of a huge finding and says how many there are', () => {
    const many = Array.from({ length: 30 }, () => contract({ modalidade: 'Dispensa de Licitação' }));
    const [f] = detect(['direct_contracting'], many, { maxContractIdsPerFinding: 10 });
    expect(f!.contract_ids).toHaveLength(10);
    expect(f!.evidence).toMatchObject({ contracts_total: 30, contract_ids_truncated: true });
    expect(f!.id).toBe(
      findingId(
        'direct_contracting',
        many.map((c) => c.id),
      ),
    );
  });
});

describe('the bundled sample dataset', () => {
  it('yields exactly its planted anomalies, one of every type at least', () => {
    const findings = detect(ANOMALY_TYPES, [...SAMPLE_CONTRACTS]);
    expect(new Set(SAMPLE_PLANTED.map((p) => p.type))).toEqual(new Set(ANOMALY_TYPES));
    expect(findings.map(signature).sort()).toEqual(SAMPLE_PLANTED.map(signature).sort());
  });
});
