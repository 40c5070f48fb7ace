// Reading Brazilian-style numbers and dates ("1.234,56", "31/12/2024") as the API's plain forms.

/**
 * "R$ 1.234,56", "1234,56", "1,234.56", "1234.56" → 1234.56. When both separators appear the last
 * one is the decimal mark; a lone comma is decimal; a lone dot is decimal; repeated marks group
 * thousands. Undefined for an empty cell, NaN for anything else.
 */
export function parseDecimal(text: string): number | undefined {
  let s = text.replace(/R\$|\s|\u00a0/g, '');
  if (s === '') return undefined;
  const neg = s.startsWith('-');
  if (neg || s.startsWith('+')) s = s.slice(1);
  if (!/^[\d.,]+$/.test(s) || !/\d/.test(s)) return Number.NaN;
  const lastDot = s.lastIndexOf('.');
  const lastComma = s.lastIndexOf(',');
  const dots = s.split('.').length - 1;
  const commas = s.split(',').length - 1;
  let normalized: string;
  if (dots > 0 && commas > 0) {
    normalized = lastComma > lastDot ? s.replace(/\./g, '').replace(',', '.') : s.replace(/,/g, '');
    if ((lastComma > lastDot ? commas : dots) > 1) return Number.NaN;
  } else if (commas > 0) {
    normalized = commas === 1 ? s.replace(',', '.') : s.replace(/,/g, '');
  } else {
    normalized = dots > 1 ? s.replace(/\./g, '') : s;
  }
  const n = Number(normalized);
  return neg ? -n : n;
}

/** "31/12/2024" or "2024-12-31" (optionally with a time) → "2024-12-31"; anything else unchanged. */
export function parseBrDate(text: string): string {
  const s = text.trim();
  const br = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(s);
  if (br) return `${br[3]}-${br[2]!.padStart(2, '0')}-${br[1]!.padStart(2, '0')}`;
  const iso = /^(\d{4}-\d{2}-\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/.exec(s);
  return iso ? iso[1]! : s;
}
