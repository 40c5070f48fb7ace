// Where contracts come from: the Portal da Transparência, the bundled sample, or the caller's upload.
import { SAMPLE_CONTRACTS } from '../data/sample-contracts.js';
import type { Contract } from '../types.js';
import { contractMatcher, parseQuery, relevance } from './match.js';

export { parseContractsCsv } from './csv.js';
export { createPortalSource, mapPortalContract, PortalError, type PortalSourceOptions } from './portal.js';

export interface ContractFilters {
  /** Free text: every meaningful word must appear in the objeto, supplier or agency name. */
  query?: string;
  orgao_codigo?: string;
  cnpj_fornecedor?: string;
  /** YYYY-MM-DD, inclusive. */
  data_inicio?: string;
  /** YYYY-MM-DD, inclusive. */
  data_fim?: string;
  /** Matched without accents or case, as a substring: "pregao" matches "Pregão Eletrônico". */
  modalidade?: string;
  max_records?: number;
}

export interface ContractSource {
  kind: 'portal' | 'sample' | 'upload';
  /** True for the bundled synthetic dataset: every answer built on it must say so. */
  sample: boolean;
  /** One line for logs: what serves the contracts. */
  describe: string;
  /** Pages of contracts; stops early when `signal` aborts (by throwing its reason). */
  pages(filters: ContractFilters, signal: AbortSignal): AsyncIterable<Contract[]>;
}

/** The label every answer built on the bundled dataset carries (API.md §6: `sample_data`). */
export const SAMPLE_DATA_NOTICE =
  'Dados de exemplo: contratos sintéticos embutidos no sistema, não são dados reais do Portal da Transparência.';

const MEMORY_PAGE_SIZE = 500;

function memorySource(
  kind: 'sample' | 'upload',
  describe: string,
  contracts: readonly Contract[],
): ContractSource {
  return {
    kind,
    sample: kind === 'sample',
    describe,
    async *pages(filters, signal) {
      signal.throwIfAborted();
      const match = contractMatcher(filters);
      const max = filters.max_records ?? Number.POSITIVE_INFINITY;
      let page: Contract[] = [];
      let emitted = 0;
      for (const c of contracts) {
        if (emitted >= max) break;
        if (!match(c)) continue;
        page.push(c);
        emitted++;
        if (page.length === MEMORY_PAGE_SIZE) {
          signal.throwIfAborted();
          yield page;
          page = [];
        }
      }
      signal.throwIfAborted();
      if (page.length > 0) yield page;
    },
  };
}

/** The bundled offline dataset (synthetic, `sample: true`), used when there is no Portal key. */
export function createSampleSource(): ContractSource {
  return memorySource(
    'sample',
    `bundled sample dataset (${SAMPLE_CONTRACTS.length} synthetic contracts, not real data)`,
    SAMPLE_CONTRACTS,
  );
}

/** Contracts the caller sent (already validated with contractSchema or parseContractsCsv). */
export function createUploadSource(contracts: Contract[]): ContractSource {
  return memorySource('upload', `uploaded contracts (${contracts.length})`, contracts);
}

/** How many contracts a chat search reads at most: a relevance search must answer in seconds. */
export const SEARCH_SCAN_LIMIT = 20_000;

/** Simple relevance search over a source for chat (objeto/fornecedor/orgao text match), best first. */
export async function searchContracts(
  source: ContractSource,
  query: string,
  limit: number,
  signal: AbortSignal,
): Promise<Contract[]> {
  const q = parseQuery(query);
  if (limit <= 0 || (q.stems.length === 0 && q.ids.length === 0)) return [];
  const top: Array<{ c: Contract; score: number }> = [];
  // Ties go to the larger contract (what a reader wants first), then the id, so results are stable.
  const before = (a: { c: Contract; score: number }, b: { c: Contract; score: number }) =>
    a.score - b.score ||
    a.c.valor_final - b.c.valor_final ||
    (a.c.id < b.c.id ? 1 : a.c.id > b.c.id ? -1 : 0);
  for await (const page of source.pages({ max_records: SEARCH_SCAN_LIMIT }, signal)) {
    for (const c of page) {
      const score = relevance(c, q);
      if (score <= 0) continue;
      const item = { c, score };
      if (top.length === limit && before(item, top[top.length - 1]!) <= 0) continue;
      let i = top.length;
      while (i > 0 && before(item, top[i - 1]!) > 0) i--;
      top.splice(i, 0, item);
      if (top.length > limit) top.pop();
    }
  }
  return top.map((t) => t.c);
}
