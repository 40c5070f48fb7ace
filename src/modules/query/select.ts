// From a Selection to the filters a source applies, one predicate per field, and a sentence saying what was selected.

import type { Contract } from '../contracts/contract.js';
import { normalizeText, stemWord } from '../contracts/text.js';
import { agencyKey } from './agencies.js';
import { nameWords, type Selection, understandQuery } from './understand.js';

/** The structured selection stored with an investigation (the `filters` of API.md §6, extended). */
export interface SelectionFilters {
  /** Free text, read with understandQuery like the investigation's query. */
  query?: string;
  orgao_codigo?: string;
  /** An agency by name (and code when known): matched against orgao / orgao_codigo only. */
  orgao?: { nome?: string; codigo?: string; mencao?: string };
  cnpj_fornecedor?: string;
  /** Every word must appear in the supplier's name. */
  fornecedor?: string;
  /** Every word (stemmed) must appear in the objeto. */
  objeto?: string[];
  data_inicio?: string;
  data_fim?: string;
  valor_min?: number;
  valor_max?: number;
  modalidade?: string;
  /** Any of them, accent-free substrings of the modalidade. */
  modalidades?: string[];
  max_records?: number;
}

/** The filters a selection stands for. */
export function selectionFilters(sel: Selection): SelectionFilters {
  const f: SelectionFilters = {};
  if (sel.agency) {
    f.orgao = {
      mencao: sel.agency.mention,
      ...(sel.agency.name ? { nome: sel.agency.name } : {}),
      ...(sel.agency.code ? { codigo: sel.agency.code } : {}),
    };
  }
  if (sel.supplier?.cnpj) f.cnpj_fornecedor = sel.supplier.cnpj;
  if (sel.supplier?.name) f.fornecedor = sel.supplier.name;
  if (sel.objectTerms.length > 0) f.objeto = sel.objectTerms;
  if (sel.from) f.data_inicio = sel.from;
  if (sel.to) f.data_fim = sel.to;
  if (sel.minValue !== undefined) f.valor_min = sel.minValue;
  if (sel.maxValue !== undefined) f.valor_max = sel.maxValue;
  if (sel.modalidades) f.modalidades = sel.modalidades;
  return f;
}

/**
 * The query and the explicit filters together (both must hold): the query is understood and its
 * free text dropped; on a clash of the same field the explicit filter wins, and date windows intersect.
 */
export function resolveFilters(
  query: string | undefined,
  filters: SelectionFilters,
  now?: Date,
): SelectionFilters {
  const { query: filterQuery, ...explicit } = filters;
  const fromText = [query, filterQuery]
    .filter((q): q is string => Boolean(q?.trim()))
    .map((q) => selectionFilters(understandQuery(q, { now })));
  const merged: SelectionFilters = {};
  for (const f of [...fromText, explicit]) {
    for (const [k, v] of Object.entries(f)) {
      if (v === undefined) continue;
      const key = k as keyof SelectionFilters;
      const prev = merged[key];
      if (key === 'data_inicio' && typeof prev === 'string')
        merged.data_inicio = prev > v ? prev : (v as string);
      else if (key === 'data_fim' && typeof prev === 'string')
        merged.data_fim = prev < v ? prev : (v as string);
      else if (key === 'objeto' && Array.isArray(prev))
        merged.objeto = [...new Set([...prev, ...(v as string[])])];
      else (merged as Record<string, unknown>)[key] = v;
    }
  }
  return merged;
}

const stemsOf = (text: string) => normalizeText(text).split(' ').map(stemWord);
// A query word matches a contract word with the same stem, or one it begins (≥ 4 letters: "medic" → "medicamento").
const hits = (stems: readonly string[], q: string) =>
  stems.some((w) => w === q || (q.length >= 4 && w.startsWith(q)));
const digitsOf = (s: string) => s.replace(/\D/g, '');

/** One predicate for every field of the filters (the free-text `query` included, understood the same way). */
export function selectionMatcher(filters: SelectionFilters): (c: Contract) => boolean {
  const f = filters.query ? resolveFilters(filters.query, { ...filters, query: undefined }) : filters;
  const checks: Array<(c: Contract) => boolean> = [];
  if (f.orgao_codigo) {
    const code = f.orgao_codigo.trim();
    checks.push((c) => c.orgao_codigo === code);
  }
  if (f.orgao) {
    const { nome, codigo, mencao } = f.orgao;
    const exact = nome ? agencyKey(nome) : null;
    // An agency we do not know by name: every word of the mention must be in the agency's name.
    const words = !nome && mencao ? nameWords(mencao).map(stemWord) : [];
    checks.push(
      (c) =>
        (codigo !== undefined && c.orgao_codigo === codigo) ||
        (exact !== null && agencyKey(c.orgao) === exact) ||
        (words.length > 0 && words.every((w) => hits(stemsOf(c.orgao), w))),
    );
  }
  if (f.cnpj_fornecedor) {
    const digits = digitsOf(f.cnpj_fornecedor);
    const text = f.cnpj_fornecedor.trim().toLowerCase();
    checks.push((c) =>
      digits.length >= 11 ? digitsOf(c.cnpj_fornecedor) === digits : c.cnpj_fornecedor.toLowerCase() === text,
    );
  }
  if (f.fornecedor) {
    const words = nameWords(f.fornecedor).map(stemWord);
    checks.push((c) => {
      const stems = stemsOf(c.fornecedor);
      return words.every((w) => hits(stems, w));
    });
  }
  if (f.objeto && f.objeto.length > 0) {
    const terms = f.objeto.map((t) => stemWord(normalizeText(t)));
    checks.push((c) => {
      const stems = stemsOf(c.objeto);
      return terms.every((t) => hits(stems, t));
    });
  }
  if (f.data_inicio) {
    const from = f.data_inicio;
    checks.push((c) => c.data_assinatura >= from);
  }
  if (f.data_fim) {
    const to = f.data_fim;
    checks.push((c) => c.data_assinatura <= to);
  }
  if (f.valor_min !== undefined) {
    const min = f.valor_min;
    checks.push((c) => c.valor_final >= min);
  }
  if (f.valor_max !== undefined) {
    const max = f.valor_max;
    checks.push((c) => c.valor_final <= max);
  }
  if (f.modalidade) {
    const m = normalizeText(f.modalidade);
    checks.push((c) => normalizeText(c.modalidade).includes(m));
  }
  if (f.modalidades && f.modalidades.length > 0) {
    const ms = f.modalidades.map(normalizeText);
    checks.push((c) => {
      const m = normalizeText(c.modalidade);
      return ms.some((x) => m.includes(x));
    });
  }
  return (c) => checks.every((check) => check(c));
}

/** How well a contract answers the object words (for ordering chat answers). */
export function objetoScore(c: Contract, terms: readonly string[]): number {
  if (terms.length === 0) return 0;
  const stems = stemsOf(c.objeto);
  return terms.filter((t) => hits(stems, stemWord(normalizeText(t)))).length;
}

const brl = new Intl.NumberFormat('pt-BR', { style: 'currency', currency: 'BRL', maximumFractionDigits: 0 });
const br = (iso: string) => `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`;

/** What the filters select, in Portuguese: "contratos do órgão Ministério da Saúde, assinados em 2024". */
export function describeSelection(f: SelectionFilters): string {
  const parts: string[] = [];
  if (f.orgao) parts.push(`do órgão ${f.orgao.nome ?? f.orgao.mencao ?? f.orgao.codigo}`);
  if (f.orgao_codigo) parts.push(`do órgão de código ${f.orgao_codigo}`);
  if (f.objeto?.length) parts.push(`cujo objeto menciona "${f.objeto.join(' ')}"`);
  if (f.fornecedor) parts.push(`do fornecedor ${f.fornecedor}`);
  if (f.cnpj_fornecedor) parts.push(`do CNPJ ${f.cnpj_fornecedor}`);
  if (f.data_inicio && f.data_fim) parts.push(`assinados de ${br(f.data_inicio)} a ${br(f.data_fim)}`);
  else if (f.data_inicio) parts.push(`assinados desde ${br(f.data_inicio)}`);
  else if (f.data_fim) parts.push(`assinados até ${br(f.data_fim)}`);
  if (f.valor_min !== undefined && f.valor_max !== undefined)
    parts.push(`de ${brl.format(f.valor_min)} a ${brl.format(f.valor_max)}`);
  else if (f.valor_min !== undefined) parts.push(`acima de ${brl.format(f.valor_min)}`);
  else if (f.valor_max !== undefined) parts.push(`até ${brl.format(f.valor_max)}`);
  const mods = [...(f.modalidades ?? []), ...(f.modalidade ? [f.modalidade] : [])];
  if (mods.length > 0) parts.push(`na modalidade ${mods.join(' ou ')}`);
  return parts.length === 0 ? 'todos os contratos' : `contratos ${parts.join(', ')}`;
}

/** True when the filters narrow nothing: the whole source is selected. */
export function selectsEverything(f: SelectionFilters): boolean {
  return describeSelection(f) === 'todos os contratos';
}

/** The agency a source must be asked for (the Portal needs one). */
export function agencyOf(f: SelectionFilters): { nome?: string; codigo?: string; mencao?: string } | null {
  if (f.orgao_codigo) return { codigo: f.orgao_codigo };
  return f.orgao ?? null;
}
