// What every detector shares: finding ids, ordering, rounding, and the Portuguese number formats.
import { createHash } from 'node:crypto';
import { MONTH_NAMES } from '../../contracts/contract.js';
import type { AnomalyType, Finding } from '../types.js';
import type { ContractStore } from './store.js';

export const clamp01 = (x: number) => Math.min(Math.max(x, 0), 1);
export const round = (x: number, digits = 3) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Same type and same contracts → same id, whatever order the data arrived in. */
export function findingId(type: AnomalyType, contractIds: readonly string[]): string {
  const h = createHash('sha256').update(type);
  for (const id of [...contractIds].sort()) h.update('\n').update(id);
  return `${type}:${h.digest('hex').slice(0, 20)}`;
}

/** Severity desc, then id: the one deterministic order of every detector's output. */
export function compareFindings(a: Finding, b: Finding): number {
  return b.severity - a.severity || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export interface FindingDraft {
  type: AnomalyType;
  severity: number;
  confidence: number;
  title: string;
  explanation: string;
  /** Store row indices of the contracts behind the finding. */
  rows: readonly number[];
  evidence: Record<string, unknown>;
}

/**
 * Turns store rows into a finding: contracts in date order, the id over ALL of them, the list
 * capped so one agency-wide finding cannot carry 100,000 ids (the evidence says how many there are).
 */
export function makeFinding(store: ContractStore, draft: FindingDraft, maxIds: number): Finding {
  const rows = [...draft.rows].sort(
    (a, b) => store.day[a]! - store.day[b]! || cmp(store.ids[a]!, store.ids[b]!),
  );
  const all = rows.map((r) => store.ids[r]!);
  const listed = all.length > maxIds ? all.slice(0, maxIds) : all;
  const evidence: Record<string, unknown> = { ...draft.evidence, contracts_total: all.length };
  if (listed.length < all.length) evidence.contract_ids_truncated = true;
  return {
    id: findingId(draft.type, all),
    type: draft.type,
    severity: round(clamp01(draft.severity)),
    confidence: round(clamp01(draft.confidence)),
    title: draft.title,
    explanation: draft.explanation,
    contract_ids: listed,
    evidence,
  };
}

function cmp(a: string, b: string) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Orders store rows by contract id: ties broken the same way whatever order the data arrived in. */
export function byId(store: ContractStore, a: number, b: number): number {
  return cmp(store.ids[a]!, store.ids[b]!);
}

export function sortFindings(findings: Finding[]): Finding[] {
  return findings.sort(compareFindings);
}

/** "R$ 1.234.567,89" without depending on the runtime's ICU data. */
export function brl(value: number): string {
  const neg = value < 0;
  const [int, dec] = Math.abs(value).toFixed(2).split('.') as [string, string];
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, '.');
  return `${neg ? '-' : ''}R$ ${grouped},${dec}`;
}

/** 0.4567 → "45,7%" */
export function pct(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits).replace('.', ',')}%`;
}

/** 2.345 → "2,3"; 6 → "6" */
export function num(x: number, digits = 1): string {
  const fixed = x.toFixed(digits);
  return (fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed).replace('.', ',');
}

/** Money in evidence: cents, no float noise (7165443.430000001 → 7165443.43). */
export const cents = (x: number) => Math.round(x * 100) / 100;

/** A month index (year * 12 + month0) → "dezembro de 2024". */
export function monthName(monthIndex: number): string {
  return `${MONTH_NAMES[monthIndex % 12]} de ${Math.floor(monthIndex / 12)}`;
}

/** A month index → "2024-12". */
export function monthKey(monthIndex: number): string {
  return `${Math.floor(monthIndex / 12)}-${String((monthIndex % 12) + 1).padStart(2, '0')}`;
}

/** Days since 1970-01-01 → "DD/MM/YYYY", the form the Portal shows. */
export function dateBr(day: number): string {
  const d = new Date(day * 86_400_000);
  const dd = String(d.getUTCDate()).padStart(2, '0');
  const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
  return `${dd}/${mm}/${d.getUTCFullYear()}`;
}

/** Days since 1970-01-01 → "YYYY-MM-DD". */
export function dateIso(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}

export function median(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const mid = n >> 1;
  return n % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function medianOf(values: Iterable<number>): number {
  return median(Float64Array.from(values).sort());
}
