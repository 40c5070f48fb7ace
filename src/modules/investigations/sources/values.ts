// Reading Brazilian-style numbers and dates ("1.234,56", "59.900", "31/12/2024") as the API's plain forms.
import { isIsoDate } from '../types.js';

/**
 * A value in reais: "R$ 1.234,56", "1234,56", "59.900" (dots group thousands: 59900), "1,234.56",
 * "1234.56", "1234.5". Undefined for anything else. A lone dot followed by exactly three digits
 * groups thousands, because a value in reais has two decimal places, not three.
 */
export function parseMoney(text: string): number | undefined {
  let s = text.replace(/R\$|\s|\u00a0/g, '');
  const neg = s.startsWith('-');
  if (neg || s.startsWith('+')) s = s.slice(1);
  let n: number;
  if (/^\d{1,3}(\.\d{3})+(,\d+)?$/.test(s)) n = Number(s.replace(/\./g, '').replace(',', '.'));
  else if (/^\d+(,\d+)?$/.test(s)) n = Number(s.replace(',', '.'));
  else if (/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(s)) n = Number(s.replace(/,/g, ''));
  else if (/^\d+(\.\d{1,2}|\.\d{4,})?$/.test(s)) n = Number(s);
  else return undefined;
  return neg ? -n : n;
}

/** Kept for the Portal's JSON (numbers as text): same reading as parseMoney, NaN when unreadable. */
export function parseDecimal(text: string): number | undefined {
  if (text.replace(/R\$|\s|\u00a0/g, '') === '') return undefined;
  return parseMoney(text) ?? Number.NaN;
}

/** "31/12/2024" or "2024-12-31" (optionally with a time) → "2024-12-31"; null unless a real date. */
export function parseDate(text: string): string | null {
  const s = text.trim();
  const br = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(?:\s+[\d:]+)?$/.exec(s);
  const iso = /^(\d{4}-\d{2}-\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/.exec(s);
  const out = br ? `${br[3]}-${br[2]!.padStart(2, '0')}-${br[1]!.padStart(2, '0')}` : iso ? iso[1]! : null;
  return out && isIsoDate(out) ? out : null;
}

/** "31/12/2024" or "2024-12-31" (optionally with a time) → "2024-12-31"; anything else unchanged. */
export function parseBrDate(text: string): string {
  return parseDate(text) ?? text.trim();
}
