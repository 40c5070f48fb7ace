// A public contract as every module reads it (API.md §6): the record, and the rules for its keys and dates.

export interface Contract {
  id: string;
  numero: string | null;
  objeto: string;
  orgao: string;
  orgao_codigo: string;
  fornecedor: string;
  cnpj_fornecedor: string;
  valor_inicial: number;
  valor_final: number;
  /** YYYY-MM-DD */
  data_assinatura: string;
  modalidade: string;
  situacao: string | null;
}

/** 14 digits become "12.345.678/0001-90" so the Portal's, the sample's and uploads' keys agree. */
export function canonicalCnpj(raw: string): string {
  const trimmed = raw.trim();
  const digits = trimmed.replace(/\D/g, '');
  if (digits.length !== 14 || /[^\d./\-\s]/.test(trimmed)) return trimmed;
  return `${digits.slice(0, 2)}.${digits.slice(2, 5)}.${digits.slice(5, 8)}/${digits.slice(8, 12)}-${digits.slice(12)}`;
}

/** True for a real calendar date written YYYY-MM-DD. */
export function isIsoDate(v: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return (
    d.getUTCFullYear() === Number(m[1]) &&
    d.getUTCMonth() === Number(m[2]) - 1 &&
    d.getUTCDate() === Number(m[3])
  );
}

/** The months as a Brazilian reader writes them (findings name them; queries match them accent-free). */
export const MONTH_NAMES: readonly string[] = [
  'janeiro',
  'fevereiro',
  'março',
  'abril',
  'maio',
  'junho',
  'julho',
  'agosto',
  'setembro',
  'outubro',
  'novembro',
  'dezembro',
];
