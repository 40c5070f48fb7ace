import { afterEach, describe, expect, it } from 'vitest';
import { SAMPLE_CONTRACTS } from '../src/modules/investigations/data/sample-contracts.js';
import {
  type ContractFilters,
  type ContractSource,
  createPortalSource,
  createSampleSource,
  createUploadSource,
  mapPortalContract,
  PortalError,
  searchContracts,
} from '../src/modules/investigations/sources/index.js';
import { retryAfterMs } from '../src/modules/investigations/sources/portal.js';
import { type Contract, contractSchema } from '../src/modules/investigations/types.js';
import {
  type FakePortal,
  type PortalRecord,
  startFakePortal,
  toPortalRecord,
} from './support/fake-portal.js';

const API_KEY = 'chave-de-teste-123';

function portalContract(i: number, p: Partial<Contract> = {}): Contract {
  const day = new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10);
  return {
    id: String(671_000_000 + i),
    numero: `${String(i).padStart(5, '0')}/2024`,
    objeto: i % 2 ? 'Aquisição de material de escritório' : 'Serviços de limpeza predial',
    orgao: 'Ministério da Saúde',
    orgao_codigo: '36000',
    fornecedor: `Fornecedor ${i % 3} Ltda`,
    cnpj_fornecedor: `${String(10 + (i % 3))}.345.678/0001-90`,
    valor_inicial: 1000 + i,
    valor_final: 1000 + i,
    data_assinatura: day,
    modalidade: i % 4 ? 'Pregão' : 'Dispensa de Licitação',
    situacao: 'Ativo',
    ...p,
  };
}

// What the real /contratos requires: an agency and a date window.
const WINDOW = { orgao_codigo: '36000', data_inicio: '2024-01-01', data_fim: '2024-12-31' };

async function collect(
  source: ContractSource,
  filters: ContractFilters = {},
  signal = new AbortController().signal,
) {
  const pages: Contract[][] = [];
  const base = source.kind === 'portal' ? WINDOW : {};
  for await (const page of source.pages({ ...base, ...filters }, signal)) pages.push(page);
  return pages;
}

function recorder() {
  const warnings: Array<{ obj: unknown; msg?: string }> = [];
  const sleeps: number[] = [];
  return {
    warnings,
    sleeps,
    log: { warn: (obj: unknown, msg?: string) => warnings.push({ obj, msg }), debug: () => {} },
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
  };
}

let portal: FakePortal | undefined;
afterEach(async () => {
  await portal?.close();
  portal = undefined;
});

async function fakePortal(records: PortalRecord[], opts: { ignorePagina?: boolean } = {}) {
  portal = await startFakePortal({ records, apiKey: API_KEY, ...opts });
  return portal;
}

function source(
  p: FakePortal,
  rec = recorder(),
  extra: Partial<Parameters<typeof createPortalSource>[0]> = {},
) {
  return createPortalSource({
    baseUrl: p.baseUrl,
    apiKey: API_KEY,
    log: rec.log,
    sleep: rec.sleep,
    ...extra,
  });
}

describe('Portal da Transparência client', () => {
  it('pages through /contratos with the key header and the Portal’s parameters until a short page', async () => {
    const contracts = Array.from({ length: 40 }, (_, i) => portalContract(i));
    const p = await fakePortal(contracts.map((c) => toPortalRecord(c)));
    const pages = await collect(source(p), {
      orgao_codigo: '36000',
      data_inicio: '2024-01-01',
      data_fim: '2025-12-31',
    });
    expect(pages.map((pg) => pg.length)).toEqual([15, 15, 10]);
    expect(pages.flat()).toEqual(contracts);
    // Two years are asked a year at a time: 2024 in three pages, then 2025 (empty).
    expect(p.requests.map((r) => r.query)).toEqual([
      ...[1, 2, 3].map((n) => ({
        codigoOrgao: '36000',
        dataInicial: '01/01/2024',
        dataFinal: '31/12/2024',
        pagina: String(n),
      })),
      { codigoOrgao: '36000', dataInicial: '01/01/2025', dataFinal: '31/12/2025', pagina: '1' },
    ]);
    expect(
      p.requests.every(
        (r) => r.path === '/api-de-dados/contratos' && r.headers['chave-api-dados'] === API_KEY,
      ),
    ).toBe(true);
  });

  it('ends on an empty page when the last page is full, and stops at max_records', async () => {
    const p = await fakePortal(Array.from({ length: 30 }, (_, i) => toPortalRecord(portalContract(i))));
    expect((await collect(source(p))).flat()).toHaveLength(30);
    expect(p.requests).toHaveLength(3);
    p.requests.length = 0;
    const limited = (await collect(source(p), { max_records: 20 })).flat();
    expect(limited.map((c) => c.id)).toEqual(Array.from({ length: 20 }, (_, i) => String(671_000_000 + i)));
    expect(p.requests).toHaveLength(2);
  });

  it('honours 429: waits Retry-After when given, backs off exponentially when not', async () => {
    const p = await fakePortal(Array.from({ length: 5 }, (_, i) => toPortalRecord(portalContract(i))));
    p.enqueue({ status: 429, retryAfter: '3' }, { status: 429 }, { status: 429 });
    const rec = recorder();
    expect((await collect(source(p, rec))).flat()).toHaveLength(5);
    expect(rec.sleeps).toEqual([3000, 2000, 4000]);
    expect(p.requests).toHaveLength(4);
    expect(rec.warnings.map((w) => (w.obj as { code: string }).code)).toEqual(
      Array(3).fill('PORTAL_RATE_LIMITED'),
    );
  });

  it('retries 5xx, then gives up with a PortalError after maxRetries', async () => {
    const p = await fakePortal([toPortalRecord(portalContract(1))]);
    p.enqueue({ status: 503 }, { status: 502 });
    const rec = recorder();
    expect((await collect(source(p, rec))).flat()).toHaveLength(1);
    expect(rec.sleeps).toEqual([1000, 2000]);

    p.enqueue({ status: 503 }, { status: 503 }, { status: 503 });
    const failing = recorder();
    const err = await collect(source(p, failing, { maxRetries: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortalError);
    expect(err).toMatchObject({ code: 'PORTAL_HTTP_ERROR', status: 503 });
    expect(failing.sleeps).toEqual([1000, 2000]);
  });

  it('does not retry a rejected key', async () => {
    const p = await fakePortal([toPortalRecord(portalContract(1))]);
    const rec = recorder();
    const err = await collect(
      createPortalSource({ baseUrl: p.baseUrl, apiKey: 'wrong', log: rec.log, sleep: rec.sleep }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'PortalError', code: 'PORTAL_HTTP_ERROR', status: 401 });
    expect(p.requests).toHaveLength(1);
    expect(rec.sleeps).toEqual([]);
  });

  it('times out a silent Portal and retries; reports PORTAL_TIMEOUT when it never answers', async () => {
    const p = await fakePortal([toPortalRecord(portalContract(1))]);
    p.enqueue({ delayMs: 5000 });
    const rec = recorder();
    expect((await collect(source(p, rec, { timeoutMs: 300 }))).flat()).toHaveLength(1);
    expect(rec.sleeps).toEqual([1000]);

    p.enqueue({ delayMs: 5000 }, { delayMs: 5000 });
    const err = await collect(source(p, recorder(), { timeoutMs: 300, maxRetries: 1 })).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'PORTAL_TIMEOUT' });
  });

  it('stops paging when the signal aborts, even while waiting out a rate limit', async () => {
    const p = await fakePortal(Array.from({ length: 40 }, (_, i) => toPortalRecord(portalContract(i))));
    const ac = new AbortController();
    const seen: number[] = [];
    const err = await (async () => {
      for await (const page of source(p).pages(WINDOW, ac.signal)) {
        seen.push(page.length);
        ac.abort();
      }
    })().catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(seen).toEqual([15]);
    expect(p.requests).toHaveLength(1);

    // No injected sleep: the real wait must end on abort, not after Retry-After's 60 s.
    p.enqueue({ status: 429, retryAfter: '60' });
    const ac2 = new AbortController();
    const pending = collect(
      createPortalSource({ baseUrl: p.baseUrl, apiKey: API_KEY, log: recorder().log }),
      {},
      ac2.signal,
    );
    setTimeout(() => ac2.abort(), 100);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('stops instead of looping when the server ignores pagina', async () => {
    const p = await fakePortal(
      Array.from({ length: 15 }, (_, i) => toPortalRecord(portalContract(i))),
      { ignorePagina: true },
    );
    expect((await collect(source(p))).flat()).toHaveLength(15);
    expect(p.requests).toHaveLength(2);
  });

  it('applies the filters the Portal cannot, and skips records a contract cannot be made of', async () => {
    const records = Array.from({ length: 12 }, (_, i) => toPortalRecord(portalContract(i)));
    records.push(toPortalRecord(portalContract(99), { fornecedor: null }));
    const p = await fakePortal(records);
    const rec = recorder();
    const found = (
      await collect(source(p, rec), { cnpj_fornecedor: '11345678000190', modalidade: 'pregao' })
    ).flat();
    expect(found.map((c) => c.id)).toEqual(['671000001', '671000007', '671000010']);
    expect(rec.warnings.some((w) => (w.obj as { skipped?: number }).skipped === 1)).toBe(true);
  });
});

describe('Portal field mapping', () => {
  it('maps the Portal’s contract record to our Contract', () => {
    const raw = {
      id: 671464460,
      numero: '00012/2024',
      objeto: 'Objeto: Contratação de serviços de vigilância patrimonial',
      situacaoContrato: 'Em execução',
      modalidadeCompra: 'Pregão',
      dataAssinatura: '05/03/2024',
      unidadeGestora: {
        codigo: '250005',
        nome: 'COORD. GERAL DE RECURSOS LOGÍSTICOS',
        orgaoVinculado: { codigoSIAFI: '36000', nome: 'Ministério da Saúde', sigla: 'MS' },
        orgaoMaximo: { codigo: '36000', nome: 'Ministério da Saúde' },
      },
      fornecedor: {
        cnpjFormatado: '00.070.698/0001-11',
        nome: 'VIGILÂNCIA CENTRAL LTDA',
        razaoSocialReceita: 'X',
      },
      valorInicialCompra: 1_250_000.5,
      valorFinalCompra: 1_310_000,
    };
    expect(mapPortalContract(raw)).toEqual({
      id: '671464460',
      numero: '00012/2024',
      objeto: 'Contratação de serviços de vigilância patrimonial',
      orgao: 'Ministério da Saúde',
      orgao_codigo: '36000',
      fornecedor: 'VIGILÂNCIA CENTRAL LTDA',
      cnpj_fornecedor: '00.070.698/0001-11',
      valor_inicial: 1_250_000.5,
      valor_final: 1_310_000,
      data_assinatura: '2024-03-05',
      modalidade: 'Pregão',
      situacao: 'Em execução',
    });
  });

  it('falls back sensibly and rejects what cannot be a contract', () => {
    const base = toPortalRecord(portalContract(3));
    expect(
      mapPortalContract({ ...base, valorFinalCompra: null, valorInicialCompra: '1.234,56' }),
    ).toMatchObject({
      valor_inicial: 1234.56,
      valor_final: 1234.56,
    });
    expect(
      mapPortalContract({ ...base, dataAssinatura: null, dataInicioVigencia: '2024-07-01' }),
    ).toMatchObject({
      data_assinatura: '2024-07-01',
    });
    expect(
      mapPortalContract({ ...base, fornecedor: { nome: 'Pessoa Física', cpfFormatado: '***.123.456-**' } }),
    ).toMatchObject({
      cnpj_fornecedor: '***.123.456-**',
    });
    expect(mapPortalContract({ ...base, modalidadeCompra: { descricao: 'Concorrência' } })).toMatchObject({
      modalidade: 'Concorrência',
    });
    expect(mapPortalContract({ ...base, fornecedor: {} })).toBeNull();
    expect(mapPortalContract({ ...base, unidadeGestora: null })).toBeNull();
    expect(
      mapPortalContract({
        ...base,
        dataAssinatura: 'ontem',
        dataInicioVigencia: null,
        dataPublicacaoDOU: null,
      }),
    ).toBeNull();
    expect(mapPortalContract('not an object')).toBeNull();
  });

  it('reads Retry-After as seconds or an HTTP date, capped', () => {
    expect(retryAfterMs('5')).toBe(5000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs('86400')).toBe(120_000);
    expect(retryAfterMs('soon')).toBeNull();
    expect(retryAfterMs(null)).toBeNull();
  });
});

describe('contract shape', () => {
  const valid = portalContract(1);

  it('defaults valor_final, writes CNPJs one way and ids as strings', () => {
    const { valor_final: _vf, ...rest } = valid;
    expect(contractSchema.parse(rest).valor_final).toBe(valid.valor_inicial);
    expect(contractSchema.parse({ ...valid, valor_final: null }).valor_final).toBe(valid.valor_inicial);
    expect(contractSchema.parse({ ...valid, cnpj_fornecedor: '12345678000190' }).cnpj_fornecedor).toBe(
      '12.345.678/0001-90',
    );
    expect(contractSchema.parse({ ...valid, id: 42, orgao_codigo: 36000 })).toMatchObject({
      id: '42',
      orgao_codigo: '36000',
    });
  });

  it('rejects impossible dates, negative values and empty text', () => {
    for (const bad of [
      { data_assinatura: '2024-02-30' },
      { data_assinatura: '15/03/2024' },
      { valor_inicial: -1 },
      { objeto: '  ' },
      { valor_inicial: '100' },
    ]) {
      expect(contractSchema.safeParse({ ...valid, ...bad }).success).toBe(false);
    }
  });
});

describe('bundled sample dataset', () => {
  it('holds about 2,000 valid, distinct, plausible contracts from 2024–2025', () => {
    expect(SAMPLE_CONTRACTS.length).toBe(2000);
    expect(new Set(SAMPLE_CONTRACTS.map((c) => c.id)).size).toBe(SAMPLE_CONTRACTS.length);
    for (const c of SAMPLE_CONTRACTS) {
      expect(contractSchema.parse(c)).toEqual(c);
      expect(c.data_assinatura >= '2024-01-01' && c.data_assinatura <= '2025-12-31').toBe(true);
      expect(cnpjIsValid(c.cnpj_fornecedor)).toBe(true);
    }
    expect(new Set(SAMPLE_CONTRACTS.map((c) => c.orgao_codigo)).size).toBeGreaterThanOrEqual(10);
    expect(new Set(SAMPLE_CONTRACTS.map((c) => c.modalidade))).toEqual(
      new Set(['Pregão', 'Concorrência', 'Dispensa de Licitação', 'Inexigibilidade de Licitação']),
    );
  });

  it('is served as sample data, in pages, with the filters applied', async () => {
    const sample = createSampleSource();
    expect(sample).toMatchObject({ kind: 'sample', sample: true });
    expect(sample.describe).toMatch(/synthetic/);
    const all = await collect(sample);
    expect(all.map((p) => p.length)).toEqual([500, 500, 500, 500]);
    const saude = (
      await collect(sample, { orgao_codigo: '36000', data_inicio: '2025-01-01', data_fim: '2025-06-30' })
    ).flat();
    expect(saude.length).toBeGreaterThan(10);
    expect(
      saude.every(
        (c) =>
          c.orgao_codigo === '36000' &&
          c.data_assinatura >= '2025-01-01' &&
          c.data_assinatura <= '2025-06-30',
      ),
    ).toBe(true);
    expect((await collect(sample, { query: 'material de escritório', max_records: 7 })).flat()).toHaveLength(
      7,
    );
  });

  it('upload sources serve exactly what was sent, not labelled as sample', async () => {
    const contracts = Array.from({ length: 1200 }, (_, i) => portalContract(i));
    const upload = createUploadSource(contracts);
    expect(upload).toMatchObject({ kind: 'upload', sample: false });
    const pages = await collect(upload);
    expect(pages.map((p) => p.length)).toEqual([500, 500, 200]);
    expect(pages.flat()).toEqual(contracts);
    const ac = new AbortController();
    ac.abort();
    await expect(collect(upload, {}, ac.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('searchContracts', () => {
  const signal = new AbortController().signal;

  it('selects by agency, object and supplier each in its own field, counts all, ranks by object then value', async () => {
    const upload = createUploadSource([
      portalContract(1, {
        id: 'A',
        objeto: 'Aquisição de medicamentos',
        fornecedor: 'Farma Brasil',
        orgao: 'Ministério da Saúde',
      }),
      portalContract(2, {
        id: 'B',
        objeto: 'Serviços de limpeza',
        fornecedor: 'Medicamentos Distribuidora Ltda',
        orgao: 'Ministério da Saúde',
      }),
      portalContract(3, {
        id: 'C',
        objeto: 'Aquisição de medicamentos oncológicos',
        orgao: 'Ministério da Saúde',
      }),
      portalContract(4, {
        id: 'D',
        objeto: 'Aquisição de medicamentos',
        orgao: 'Ministério da Educação',
        orgao_codigo: '26000',
      }),
      portalContract(5, {
        id: 'E',
        objeto: 'Cursos de capacitação',
        fornecedor: 'Educação Corporativa Ltda',
        orgao: 'Ministério da Saúde',
      }),
    ]);
    // "medicamento" is an object word: B (a supplier named Medicamentos…) is not selected.
    const found = await searchContracts(upload, 'investigue contratos de medicamento na saúde', 10, signal);
    expect(found.top.map((c) => c.id)).toEqual(['C', 'A']);
    expect(found.total).toBe(2);
    expect(found.description).toBe(
      'contratos do órgão Ministério da Saúde, cujo objeto menciona "medicamento"',
    );
    // The limit caps what is shown, never the count.
    const limited = await searchContracts(upload, 'medicamento', 1, signal);
    expect(limited.top.map((c) => c.id)).toEqual(['D']);
    expect(limited.total).toBe(3);
    // "Educação" is the ministry, not the supplier "Educação Corporativa".
    const educacao = await searchContracts(upload, 'contratos da Educação', 10, signal);
    expect(educacao.top.map((c) => c.id)).toEqual(['D']);
    // Nothing to narrow by: everything is selected.
    expect((await searchContracts(upload, 'investigue os contratos', 10, signal)).total).toBe(5);
  });

  it('finds a supplier by CNPJ and searches the sample by subject', async () => {
    const sample = createSampleSource();
    const target = SAMPLE_CONTRACTS[10]!;
    const byCnpj = await searchContracts(sample, `contratos do CNPJ ${target.cnpj_fornecedor}`, 3, signal);
    const expected = SAMPLE_CONTRACTS.filter((c) => c.cnpj_fornecedor === target.cnpj_fornecedor);
    expect(byCnpj.total).toBe(expected.length);
    expect(byCnpj.top.every((c) => c.cnpj_fornecedor === target.cnpj_fornecedor)).toBe(true);

    const office = await searchContracts(sample, 'material de escritório', 5, signal);
    expect(office.top).toHaveLength(5);
    expect(office.total).toBe(
      SAMPLE_CONTRACTS.filter((c) => /material de escritório/i.test(c.objeto)).length,
    );
    expect(office.top.every((c) => c.objeto.startsWith('Aquisição de material de escritório'))).toBe(true);
    // Equal relevance: the larger contract first.
    const values = office.top.map((c) => c.valor_final);
    expect(values).toEqual([...values].sort((a, b) => b - a));
    expect(values[0]).toBe(171_450);
  });
});

/** Receita Federal's check digits, recomputed independently of the generator. */
function cnpjIsValid(formatted: string): boolean {
  const d = formatted.replace(/\D/g, '').split('').map(Number);
  if (d.length !== 14) return false;
  const dv = (len: number) => {
    const weights =
      len === 12 ? [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2] : [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
    const r = weights.reduce((s, w, i) => s + w * d[i]!, 0) % 11;
    return r < 2 ? 0 : 11 - r;
  };
  return dv(12) === d[12] && dv(13) === d[13];
}
