// Query understanding: a table of questions people ask and the selection each must produce.
import { describe, expect, it } from 'vitest';
import { SAMPLE_CONTRACTS } from '../src/modules/investigations/data/sample-contracts.js';
import { describeSelection, resolveFilters, selectionMatcher } from '../src/modules/query/select.js';
import { type Selection, understandQuery } from '../src/modules/query/understand.js';

const NOW = new Date('2025-06-15T12:00:00Z');
const SAUDE = { name: 'Ministério da Saúde', code: '36000' };
const MEC = { name: 'Ministério da Educação', code: '26000' };

type Expect = Partial<Omit<Selection, 'agency' | 'problems'>> & {
  agency?: { name?: string; code?: string; mention?: string };
  problems?: number;
};

// [question, expected selection]; fields not named must be absent (objectTerms must be [] unless named).
const TABLE: Array<[string, Expect]> = [
  ['contratos do Ministério da Saúde', { agency: SAUDE }],
  ['quais contratos da saúde são suspeitos?', { agency: SAUDE }],
  ['CONTRATOS DO MINISTERIO DA SAUDE', { agency: SAUDE }],
  ['gastos da educação em 2024', { agency: MEC, from: '2024-01-01', to: '2024-12-31' }],
  ['contratos do MEC acima de R$ 1 milhão', { agency: MEC, minValue: 1_000_000 }],
  ['licitações da Educação', { agency: MEC }],
  ['contratos do órgão 36000', { agency: SAUDE }],
  ['codigoOrgao=26000 em 2025', { agency: MEC, from: '2025-01-01', to: '2025-12-31' }],
  ['compras da Fiocruz', { agency: { name: 'Fundação Oswaldo Cruz', code: '36201' } }],
  ['contratos do ICMBio em 2024', { agency: { code: '44207' }, from: '2024-01-01', to: '2024-12-31' }],
  ['contratos da UFMG', { agency: { name: 'Universidade Federal de Minas Gerais' } }],
  ['gastos do Exército com combustível', { agency: { code: '52121' }, objectTerms: ['combustivel'] }],
  [
    'contratos da Universidade Federal de Pernambuco em 2023',
    { agency: { mention: 'Universidade Federal de Pernambuco' }, from: '2023-01-01', to: '2023-12-31' },
  ],
  ['abra uma investigação sobre merenda escolar', { objectTerms: ['merenda', 'escolar'] }],
  ['investigue contratos de material de escritório', { objectTerms: ['material', 'escritorio'] }],
  ['contratos de medicamentos do Ministério da Saúde', { agency: SAUDE, objectTerms: ['medicamentos'] }],
  [
    'compras de material hospitalar na saúde em 2025',
    { agency: SAUDE, objectTerms: ['material', 'hospitalar'], from: '2025-01-01', to: '2025-12-31' },
  ],
  ['serviços de vigilância patrimonial', { objectTerms: ['servicos', 'vigilancia', 'patrimonial'] }],
  [
    'locação de veículos entre 2024 e 2025',
    { objectTerms: ['locacao', 'veiculos'], from: '2024-01-01', to: '2025-12-31' },
  ],
  ['contratos de 2023 a 2025', { from: '2023-01-01', to: '2025-12-31' }],
  ['contratos assinados desde 2024', { from: '2024-01-01' }],
  ['contratos depois de 2024', { from: '2025-01-01' }],
  ['contratos antes de 2025', { to: '2024-12-31' }],
  ['contratos até 2024', { to: '2024-12-31' }],
  ['contratos de março de 2024', { from: '2024-03-01', to: '2024-03-31' }],
  ['contratos de fevereiro a abril de 2024', { from: '2024-02-01', to: '2024-04-30' }],
  ['contratos do primeiro semestre de 2025', { from: '2025-01-01', to: '2025-06-30' }],
  ['contratos do segundo semestre de 2024', { from: '2024-07-01', to: '2024-12-31' }],
  ['contratos entre 01/03/2024 e 15/04/2024', { from: '2024-03-01', to: '2024-04-15' }],
  ['contratos a partir de 10/01/2025', { from: '2025-01-10' }],
  ['contratos assinados em 31/02/2025', { problems: 1 }],
  ['contratos deste ano', { from: '2025-01-01', to: '2025-06-15' }],
  ['contratos do ano passado', { from: '2024-01-01', to: '2024-12-31' }],
  ['contratos dos últimos 6 meses', { from: '2024-12-15', to: '2025-06-15' }],
  ['contratos acima de R$ 1 milhão', { minValue: 1_000_000 }],
  ['contratos com valor acima de 500 mil', { minValue: 500_000 }],
  ['contratos abaixo de R$ 50.000,00', { maxValue: 50_000 }],
  ['contratos de até R$ 10 mil', { maxValue: 10_000 }],
  ['contratos entre R$ 100 mil e R$ 2,5 milhões', { minValue: 100_000, maxValue: 2_500_000 }],
  ['contratos maiores que 1,5 milhão de reais', { minValue: 1_500_000 }],
  ['contratos superiores a R$ 59.900', { minValue: 59_900 }],
  ['contratos do fornecedor Capital Alimentos Ltda', { supplier: { name: 'Capital Alimentos Ltda' } }],
  ['contratos da empresa Aurora Tecnologia no MEC', { supplier: { name: 'Aurora Tecnologia' }, agency: MEC }],
  ['quais contratos a Nova Era Consultoria EPP ganhou?', { supplier: { name: 'Nova Era Consultoria EPP' } }],
  ['contratos do CNPJ 81.840.759/0001-84', { supplier: { cnpj: '81.840.759/0001-84' } }],
  [
    'fornecedor 81840759000184 em 2024',
    { supplier: { cnpj: '81840759000184' }, from: '2024-01-01', to: '2024-12-31' },
  ],
  ['contratos sem licitação da saúde', { agency: SAUDE, modalidades: ['dispensa', 'inexigibilidade'] }],
  [
    'dispensas de licitação do MEC em 2025',
    { agency: MEC, modalidades: ['dispensa'], from: '2025-01-01', to: '2025-12-31' },
  ],
  ['pregões de combustível', { modalidades: ['pregao'], objectTerms: ['combustivel'] }],
  ['contratações por inexigibilidade', { modalidades: ['inexigibilidade'] }],
  ['quais contratos são suspeitos?', {}],
  ['mostre as anomalias', {}],
];

function pick(sel: Selection) {
  return {
    ...(sel.agency ? { agency: sel.agency } : {}),
    ...(sel.supplier ? { supplier: sel.supplier } : {}),
    objectTerms: sel.objectTerms,
    ...(sel.from ? { from: sel.from } : {}),
    ...(sel.to ? { to: sel.to } : {}),
    ...(sel.minValue !== undefined ? { minValue: sel.minValue } : {}),
    ...(sel.maxValue !== undefined ? { maxValue: sel.maxValue } : {}),
    ...(sel.modalidades ? { modalidades: sel.modalidades } : {}),
  };
}

function sameAs(a: unknown, b: unknown): boolean {
  try {
    expect(a).toEqual(b);
    return true;
  } catch {
    return false;
  }
}

describe('query understanding', () => {
  it(`reads ${TABLE.length} realistic questions into the expected selection`, () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(40);
    const wrong: unknown[] = [];
    for (const [question, want] of TABLE) {
      const sel = understandQuery(question, { now: NOW });
      const { problems = 0, agency, ...rest } = want;
      const expected = {
        ...(agency ? { agency: expect.objectContaining(agency) } : {}),
        ...rest,
        objectTerms: rest.objectTerms ?? [],
      };
      const got = pick(sel);
      // Collected, so one run shows every question that is read wrong.
      if (!sameAs(got, expected) || sel.problems.length !== problems)
        wrong.push({ question, got, problems: sel.problems });
    }
    expect(wrong).toEqual([]);
  });

  it('selects on the sample exactly the contracts each field names, and says what and how many', () => {
    const count = (q: string) => SAMPLE_CONTRACTS.filter(selectionMatcher(resolveFilters(q, {}, NOW))).length;
    const saude = SAMPLE_CONTRACTS.filter((c) => c.orgao === 'Ministério da Saúde');
    expect(count('contratos do Ministério da Saúde')).toBe(saude.length);
    expect(count('quais contratos da saúde são suspeitos?')).toBe(saude.length);
    // "Educação" is the ministry: suppliers called "… Educação Corporativa" elsewhere are not selected.
    const mec = SAMPLE_CONTRACTS.filter((c) => c.orgao === 'Ministério da Educação');
    expect(count('contratos da Educação')).toBe(mec.length);
    expect(
      SAMPLE_CONTRACTS.some((c) => c.fornecedor.includes('Educação') && c.orgao !== 'Ministério da Educação'),
    ).toBe(true);
    expect(count('contratos acima de R$ 1 milhão')).toBe(
      SAMPLE_CONTRACTS.filter((c) => c.valor_final >= 1e6).length,
    );
    expect(count('material hospitalar da saúde em 2025')).toBe(
      saude.filter((c) => /material hospitalar/i.test(c.objeto) && c.data_assinatura.startsWith('2025'))
        .length,
    );
    expect(count('contratos sem licitação')).toBe(
      SAMPLE_CONTRACTS.filter((c) => /Dispensa|Inexigibilidade/.test(c.modalidade)).length,
    );
    expect(describeSelection(resolveFilters('contratos do MEC acima de R$ 1 milhão em 2024', {}))).toMatch(
      /^contratos do órgão Ministério da Educação, assinados de 01\/01\/2024 a 31\/12\/2024, acima de R\$\s1\.000\.000$/,
    );
  });

  it('combines a query with explicit filters: both must hold, date windows intersect', () => {
    const f = resolveFilters('contratos da saúde em 2024', {
      data_inicio: '2024-06-01',
      data_fim: '2025-12-31',
      modalidade: 'Pregão',
    });
    expect(f).toMatchObject({
      orgao: { nome: 'Ministério da Saúde', codigo: '36000' },
      data_inicio: '2024-06-01',
      data_fim: '2024-12-31',
      modalidade: 'Pregão',
    });
    const match = selectionMatcher(f);
    const picked = SAMPLE_CONTRACTS.filter(match);
    expect(picked.length).toBeGreaterThan(0);
    expect(
      picked.every(
        (c) =>
          c.orgao === 'Ministério da Saúde' &&
          c.modalidade === 'Pregão' &&
          c.data_assinatura >= '2024-06-01' &&
          c.data_assinatura <= '2024-12-31',
      ),
    ).toBe(true);
  });
});
