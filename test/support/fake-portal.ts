// A local HTTP server that answers /contratos like the Portal da Transparência, with scriptable faults.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Contract } from '../../src/modules/investigations/types.js';

/** One record in the Portal's JSON shape (the fields we read, plus a few we do not). */
export type PortalRecord = Record<string, unknown>;

export type Fault =
  /** Answer this status (and Retry-After) instead of data. */
  | { status: number; retryAfter?: string; body?: string }
  /** Hold the answer this long (to trip the client's timeout), then answer normally. */
  | { delayMs: number };

export interface FakePortalRequest {
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
}

export interface FakePortal {
  /** Like https://api.portaldatransparencia.gov.br/api-de-dados */
  baseUrl: string;
  requests: FakePortalRequest[];
  /** Faults for the next requests, consumed one per request before normal answers resume. */
  enqueue(...faults: Fault[]): void;
  close(): Promise<void>;
}

const brDate = (iso: string) => `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`;
const BR_DATE = /^\d{2}\/\d{2}\/\d{4}$/;
const isoFromBr = (br: string) => `${br.slice(6, 10)}-${br.slice(3, 5)}-${br.slice(0, 2)}`;

/** Our contract written the way the Portal serves it. */
export function toPortalRecord(c: Contract, overrides: PortalRecord = {}): PortalRecord {
  return {
    id: Number(c.id.replace(/\D/g, '')) || c.id,
    numero: c.numero,
    objeto: `Objeto: ${c.objeto}`,
    numeroProcesso: '23000.000001/2024-01',
    fundamentoLegal: 'Lei 14.133/2021',
    compra: { numero: '000012024', objeto: c.objeto, numeroProcesso: '23000.000001/2024-01' },
    situacaoContrato: c.situacao,
    modalidadeCompra: c.modalidade,
    unidadeGestora: {
      codigo: '150002',
      nome: `${c.orgao.toUpperCase()} - SEDE`,
      descricaoPoder: 'EXECUTIVO',
      orgaoVinculado: { codigoSIAFI: c.orgao_codigo, cnpj: '00394445000101', sigla: 'ORG', nome: c.orgao },
      orgaoMaximo: { codigo: c.orgao_codigo, sigla: 'ORG', nome: c.orgao },
    },
    dataAssinatura: brDate(c.data_assinatura),
    dataPublicacaoDOU: brDate(c.data_assinatura),
    dataInicioVigencia: brDate(c.data_assinatura),
    dataFimVigencia: '31/12/2026',
    fornecedor: {
      id: 1,
      cpfFormatado: '',
      cnpjFormatado: c.cnpj_fornecedor,
      numeroInscricaoSocial: '',
      nome: c.fornecedor,
      razaoSocialReceita: c.fornecedor.toUpperCase(),
      nomeFantasiaReceita: '',
      tipo: 'PESSOA JURÍDICA',
    },
    valorInicialCompra: c.valor_inicial,
    valorFinalCompra: c.valor_final,
    ...overrides,
  };
}

export async function startFakePortal(opts: {
  records: PortalRecord[];
  apiKey: string;
  /** The Portal serves 15 per page. */
  pageSize?: number;
  /** Misbehave like a server that ignores `pagina` and always answers page 1. */
  ignorePagina?: boolean;
  /** Extra [codigo, nome] rows for the /orgaos-siafi listing. */
  agencies?: Array<[string, string]>;
}): Promise<FakePortal> {
  const pageSize = opts.pageSize ?? 15;
  // The agency listing (/orgaos-siafi): the records' agencies plus any given, filtered by `descricao`.
  const agencies = new Map<string, string>(opts.agencies ?? []);
  for (const r of opts.records) {
    const v = (r.unidadeGestora as { orgaoVinculado?: { codigoSIAFI?: string; nome?: string } } | undefined)
      ?.orgaoVinculado;
    if (v?.codigoSIAFI && v.nome) agencies.set(v.codigoSIAFI, v.nome);
  }
  const fold = (s: string) =>
    s
      .normalize('NFD')
      .replace(/[\u0300-\u036f]/g, '')
      .toUpperCase();
  const listAgencies = (q: URLSearchParams) => {
    const want = fold(q.get('descricao') ?? '');
    return [...agencies]
      .filter(([, nome]) => fold(nome).includes(want))
      .map(([codigo, nome]) => ({ codigo, descricao: fold(nome) }));
  };
  const faults: Fault[] = [];
  const requests: FakePortalRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push({ path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const answer = () => {
      if (req.headers['chave-api-dados'] !== opts.apiKey) return json(401, { error: 'chave inválida' });
      if (url.pathname === '/api-de-dados/orgaos-siafi') return json(200, listAgencies(url.searchParams));
      if (url.pathname !== '/api-de-dados/contratos') return json(404, { error: 'not found' });
      const pagina = opts.ignorePagina ? 1 : Number(url.searchParams.get('pagina') ?? '1');
      if (!(pagina >= 1)) return json(400, { 'Erro na API': 'Parâmetro pagina inválido' });
      const orgao = url.searchParams.get('codigoOrgao');
      const from = url.searchParams.get('dataInicial');
      const to = url.searchParams.get('dataFinal');
      // Like the real /contratos: an agency and a date window (dd/mm/yyyy) are required.
      if (!orgao) return json(400, { 'Erro na API': 'O parâmetro codigoOrgao é obrigatório' });
      if (!from || !to || !BR_DATE.test(from) || !BR_DATE.test(to)) {
        return json(400, {
          'Erro na API': 'Os parâmetros dataInicial e dataFinal são obrigatórios, no formato DD/MM/AAAA',
        });
      }
      const rows = opts.records.filter((r) => {
        const ug = r.unidadeGestora as
          | { orgaoVinculado?: { codigoSIAFI?: string }; orgaoMaximo?: { codigo?: string } }
          | undefined;
        // The agency asked for, or the superior agency it answers to.
        if (ug?.orgaoVinculado?.codigoSIAFI !== orgao && ug?.orgaoMaximo?.codigo !== orgao) return false;
        const signed = typeof r.dataAssinatura === 'string' ? isoFromBr(r.dataAssinatura) : '';
        if (from && signed < isoFromBr(from)) return false;
        if (to && signed > isoFromBr(to)) return false;
        return true;
      });
      return json(200, rows.slice((pagina - 1) * pageSize, pagina * pageSize));
    };

    const fault = faults.shift();
    if (!fault) return answer();
    if ('delayMs' in fault) {
      const t = setTimeout(() => {
        timers.delete(t);
        answer();
      }, fault.delayMs);
      timers.add(t);
      return;
    }
    if (res.destroyed) return;
    res.writeHead(fault.status, {
      'content-type': 'application/json',
      ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}),
    });
    res.end(fault.body ?? JSON.stringify({ error: `status ${fault.status}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/api-de-dados`,
    requests,
    enqueue: (...f) => {
      faults.push(...f);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
