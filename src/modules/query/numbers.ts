// Amounts and dates as people write them in Portuguese questions: "R$ 1,5 milhão", "500 mil", "31/12/2024".
import { isIsoDate, MONTH_NAMES } from '../contracts/contract.js';
import { normalizeText } from '../contracts/text.js';

const UNITS: Record<string, number> = {
  mil: 1e3,
  k: 1e3,
  mi: 1e6,
  milhao: 1e6,
  milhoes: 1e6,
  bi: 1e9,
  bilhao: 1e9,
  bilhoes: 1e9,
};

/** "1.500.000" → 1500000, "1,5" → 1.5, "50.000,00" → 50000, "2.5" → 2.5 (a lone dot before 1–2 digits). */
export function parseBrNumber(text: string): number {
  const s = text.trim();
  if (s.includes(',')) return Number(s.replace(/\./g, '').replace(',', '.'));
  if (/^\d{1,3}(\.\d{3})+$/.test(s)) return Number(s.replace(/\./g, ''));
  return Number(s);
}

/** The amount a number and its unit word stand for ("1,5" + "milhão" → 1500000). */
export function amount(num: string, unit: string | undefined): number {
  const n = parseBrNumber(num);
  return unit ? n * (UNITS[unit] ?? 1) : n;
}

/** A regex source for an amount: needs "R$", a unit word or "reais", so years and codes are not amounts. */
export const AMOUNT = String.raw`(?:r\$\s*(\d+(?:[.,]\d+)*)(?:\s*(mil|milhao|milhoes|mi|bilhao|bilhoes|bi)\b)?|(\d+(?:[.,]\d+)*)\s*(mil|milhao|milhoes|mi|bilhao|bilhoes|bi|k)\b|(\d+(?:[.,]\d+)*)\s*reais\b)(?:\s*(?:de\s+)?reais\b)?`;

/** The value of a match of AMOUNT, from its capture groups (offset = index of its first group). */
export function amountOf(m: RegExpExecArray, offset: number): number {
  if (m[offset] !== undefined) return amount(m[offset]!, m[offset + 1]);
  if (m[offset + 2] !== undefined) return amount(m[offset + 2]!, m[offset + 3]);
  return amount(m[offset + 4]!, undefined);
}

// Accent-free, as the query text is matched.
export const MONTHS = MONTH_NAMES.map(normalizeText);

const pad = (n: number) => String(n).padStart(2, '0');

export function monthStart(year: number, month: number): string {
  return `${year}-${pad(month)}-01`;
}

export function monthEnd(year: number, month: number): string {
  const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return `${year}-${pad(month)}-${pad(last)}`;
}

/** "31/12/2024" → "2024-12-31"; null when the day does not exist ("31/02/2025"). */
export function brDateToIso(text: string): string | null {
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(text.trim());
  if (!m) return null;
  const iso = `${m[3]}-${pad(Number(m[2]))}-${pad(Number(m[1]))}`;
  return isIsoDate(iso) ? iso : null;
}

export function isoOf(d: Date): string {
  return d.toISOString().slice(0, 10);
}
