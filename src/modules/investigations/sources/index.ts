// Where contracts come from: the Portal da Transparência, the bundled sample, or the caller's upload.

import { describeSelection, objetoScore, resolveFilters } from '../../query/select.js';
import type { Contract } from '../types.js';
import { contractMatcher } from './match.js';
import type { ContractFilters, ContractSource } from './source.js';

export { parseContractsCsv } from './csv.js';
export { createPortalSource, mapPortalContract, type PortalSourceOptions } from './portal.js';
export { PortalError } from './portal-error.js';

export type { ContractFilters, ContractSource } from './source.js';

/** The label every answer built on the bundled dataset carries (API.md §6: `sample_data`). */
export const SAMPLE_DATA_NOTICE =
  'Dados de exemplo: contratos sintéticos embutidos no sistema, não são dados reais do Portal da Transparência.';

const MEMORY_PAGE_SIZE = 500;

function memorySource(
  kind: 'sample' | 'upload',
  describe: string,
  load: () => readonly Contract[] | Promise<readonly Contract[]>,
): ContractSource {
  return {
    kind,
    sample: kind === 'sample',
    describe,
    async *pages(filters, signal) {
      signal.throwIfAborted();
      const contracts = await load();
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
  return memorySource('sample', 'bundled sample dataset (synthetic contracts, not real data)', loadSample);
}

// Loaded on first use, not at boot: ~1.3 MB of heap (and its code) that an instance with a Portal
// key never reads.
let sample: Promise<readonly Contract[]> | null = null;
const loadSample = () => (sample ??= import('../data/sample-contracts.js').then((m) => m.SAMPLE_CONTRACTS));

/** Contracts the caller sent (already validated with contractSchema or parseContractsCsv). */
export function createUploadSource(contracts: Contract[]): ContractSource {
  return memorySource('upload', `uploaded contracts (${contracts.length})`, () => contracts);
}

/** How many contracts a chat search reads at most: a chat answer must come in seconds. */
export const SEARCH_SCAN_LIMIT = 20_000;

export interface SearchResult {
  /** The best `limit` contracts: most object words matched, then the largest value. */
  top: Contract[];
  /** How many contracts the question selects (all of them, not the `limit`). */
  total: number;
  /** True when the scan stopped at SEARCH_SCAN_LIMIT: `total` is then a lower bound. */
  truncated: boolean;
  filters: ContractFilters;
  /** "contratos do órgão Ministério da Saúde, assinados em 2024" */
  description: string;
}

/** The contracts a question selects (query understanding), counted, best first; `onPage` sees them all. */
export async function searchContracts(
  source: ContractSource,
  query: string,
  limit: number,
  signal: AbortSignal,
  onPage?: (page: Contract[]) => void,
): Promise<SearchResult> {
  const filters = resolveFilters(query, {});
  const terms = filters.objeto ?? [];
  const top: Array<{ c: Contract; score: number }> = [];
  // Ties go to the larger contract (what a reader wants first), then the id, so results are stable.
  const before = (a: { c: Contract; score: number }, b: { c: Contract; score: number }) =>
    a.score - b.score ||
    a.c.valor_final - b.c.valor_final ||
    (a.c.id < b.c.id ? 1 : a.c.id > b.c.id ? -1 : 0);
  let total = 0;
  for await (const page of source.pages({ ...filters, max_records: SEARCH_SCAN_LIMIT }, signal)) {
    total += page.length;
    onPage?.(page);
    if (limit <= 0) continue;
    for (const c of page) {
      const item = { c, score: objetoScore(c, terms) };
      if (top.length === limit && before(item, top[top.length - 1]!) <= 0) continue;
      let i = top.length;
      while (i > 0 && before(item, top[i - 1]!) > 0) i--;
      top.splice(i, 0, item);
      if (top.length > limit) top.pop();
    }
  }
  return {
    top: top.map((t) => t.c),
    total,
    truncated: total >= SEARCH_SCAN_LIMIT,
    filters,
    description: describeSelection(filters),
  };
}
