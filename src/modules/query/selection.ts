// What a question selects: the contracts' fields a query names, read by understand.ts and its readers.
export interface Selection {
  /** Matched against the agency fields only (orgao, orgao_codigo). */
  agency?: { mention: string; name?: string; code?: string };
  /** Matched against the supplier fields only (fornecedor, cnpj_fornecedor). */
  supplier?: { name?: string; cnpj?: string };
  /** Words matched against the objeto only (accent-free, lowercase). */
  objectTerms: string[];
  /** YYYY-MM-DD, inclusive. */
  from?: string;
  to?: string;
  /** On the contract's current value (valor_final), in reais, inclusive. */
  minValue?: number;
  maxValue?: number;
  /** Any of these, matched as accent-free substrings of the modalidade. */
  modalidades?: string[];
  /** What could not be read (e.g. "31/02/2025 is not a date"). */
  problems: string[];
}
