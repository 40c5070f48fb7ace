// Filtering and relevance scoring of contracts held in memory (sample and upload), and of Portal pages.
import { normalizeText, searchTokens, stemWord } from '../detectors/text.js';
import type { Contract } from '../types.js';
import type { ContractFilters } from './index.js';

// Words people put in a question that never describe a contract ("investigue os contratos de …").
const QUERY_NOISE = new Set(
  (
    'contrato contratos licitacao licitacoes investigar investigue investigacao analisar analise analisa ' +
    'verificar verifique mostre mostrar liste listar quero ver busque buscar procure procurar encontre ' +
    'governo federal publico publicos publica publicas dados gasto gastos despesa despesas valor valores ' +
    'suspeito suspeitos suspeita suspeitas anomalia anomalias irregularidade irregularidades quais qual ' +
    'existem existe ha tem foram feitos feito'
  ).split(' '),
);

/** The words of a free-text query worth matching, stemmed. */
export function queryStems(query: string): string[] {
  return [...new Set(searchTokens(query).filter((t) => !QUERY_NOISE.has(t) && !/^\d+$/.test(t)))].map(
    stemWord,
  );
}

function stemsOf(text: string): string[] {
  return normalizeText(text)
    .split(' ')
    .filter((w) => w.length >= 2)
    .map(stemWord);
}

// A query word matches a contract word with the same stem, or one it begins (≥ 4 letters: "saud" → "saude").
function hits(stems: readonly string[], q: string): boolean {
  return stems.some((w) => w === q || (q.length >= 4 && w.startsWith(q)));
}

const digitsOf = (s: string) => s.replace(/\D/g, '');

/** A predicate for the filters a source cannot apply itself. */
export function contractMatcher(filters: ContractFilters): (c: Contract) => boolean {
  const orgao = filters.orgao_codigo?.trim();
  const cnpjDigits = filters.cnpj_fornecedor ? digitsOf(filters.cnpj_fornecedor) : '';
  const cnpjText = filters.cnpj_fornecedor?.trim().toLowerCase();
  const modalidade = filters.modalidade ? normalizeText(filters.modalidade) : '';
  const query = parseQuery(filters.query ?? '');
  return (c) => {
    if (orgao && c.orgao_codigo !== orgao) return false;
    if (cnpjText) {
      const same =
        cnpjDigits.length >= 11
          ? digitsOf(c.cnpj_fornecedor) === cnpjDigits
          : c.cnpj_fornecedor.toLowerCase() === cnpjText;
      if (!same) return false;
    }
    if (filters.data_inicio && c.data_assinatura < filters.data_inicio) return false;
    if (filters.data_fim && c.data_assinatura > filters.data_fim) return false;
    if (modalidade && !normalizeText(c.modalidade).includes(modalidade)) return false;
    if (query.stems.length > 0) {
      // Every meaningful query word must appear somewhere in what the contract says.
      const stems = stemsOf(`${c.objeto} ${c.fornecedor} ${c.orgao}`);
      if (!query.stems.every((q) => hits(stems, q))) return false;
    }
    if (query.ids.length > 0) {
      const ids = [digitsOf(c.cnpj_fornecedor), c.orgao_codigo, digitsOf(c.id)];
      if (!query.ids.some((d) => ids.includes(d))) return false;
    }
    return true;
  };
}

export interface ParsedQuery {
  stems: string[];
  /** Numbers long enough to be a CNPJ, an agency code or a contract id. */
  ids: string[];
}

export function parseQuery(query: string): ParsedQuery {
  const ids = (query.match(/\d[\d./-]*\d/g) ?? []).map(digitsOf).filter((d) => d.length >= 5);
  return { stems: queryStems(query), ids };
}

/** How well a contract answers a query: what is bought weighs most, then who sells, then who buys. */
export function relevance(c: Contract, query: ParsedQuery): number {
  const fields: Array<[string[], number]> = [
    [stemsOf(c.objeto), 3],
    [stemsOf(c.fornecedor), 2],
    [stemsOf(c.orgao), 1],
  ];
  let score = 0;
  let matched = 0;
  for (const q of query.stems) {
    let best = 0;
    for (const [stems, weight] of fields) if (weight > best && hits(stems, q)) best = weight;
    if (best > 0) matched++;
    score += best;
  }
  if (query.stems.length > 1 && matched === query.stems.length) score *= 1.5;
  // An exact identifier in the query (CNPJ, agency code, contract id) trumps words.
  if (query.ids.length > 0) {
    const cnpj = digitsOf(c.cnpj_fornecedor);
    const id = digitsOf(c.id);
    if (query.ids.some((d) => d === cnpj || d === c.orgao_codigo || d === id)) score += 10;
  }
  return score;
}
