// The shared vocabulary of investigations: anomaly types, the Contract shape (API.md §6), findings.
import { z } from 'zod';
import { type Contract, canonicalCnpj, isIsoDate } from '../contracts/contract.js';

// The contract record and its field rules live in contracts/, below query and investigations.
export { type Contract, canonicalCnpj, isIsoDate };

export const ANOMALY_TYPES = [
  'price_outlier',
  'supplier_concentration',
  'contract_splitting',
  'value_increase',
  'temporal_spike',
  'direct_contracting',
] as const;
export type AnomalyType = (typeof ANOMALY_TYPES)[number];

export interface Finding {
  /** Deterministic: the type plus a hash of the sorted contract ids, so reruns give the same ids. */
  id: string;
  type: AnomalyType;
  /** 0..1 */
  severity: number;
  /** 0..1 */
  confidence: number;
  title: string;
  /** Portuguese, with the numbers a journalist needs to check it. */
  explanation: string;
  contract_ids: string[];
  /** The numbers behind the finding. */
  evidence: Record<string, unknown>;
}

const text = (max: number) => z.string().trim().min(1).max(max);
// Portal ids and agency codes are numbers in some exports; the API speaks strings.
const code = (max: number) =>
  z
    .union([z.string(), z.number().int().nonnegative()])
    .transform((v) => String(v).trim())
    .pipe(z.string().min(1).max(max));
const money = z.number().finite().nonnegative().max(1e15);

/** The upload shape of API.md §6; `valor_final` defaults to `valor_inicial`. */
export const contractSchema = z
  .object({
    id: code(128),
    numero: z
      .union([z.string().trim().max(200), z.number()])
      .nullish()
      .transform((v) => (v === null || v === undefined || v === '' ? null : String(v))),
    objeto: text(5000),
    orgao: text(500),
    orgao_codigo: code(64),
    fornecedor: text(500),
    cnpj_fornecedor: text(32).transform(canonicalCnpj),
    valor_inicial: money,
    valor_final: money.nullish(),
    data_assinatura: z.string().refine(isIsoDate, { message: 'expected a date as YYYY-MM-DD' }),
    modalidade: text(200),
    situacao: z
      .string()
      .trim()
      .max(200)
      .nullish()
      .transform((v) => (v ? v : null)),
  })
  .transform(
    (c): Contract => ({
      id: c.id,
      numero: c.numero,
      objeto: c.objeto,
      orgao: c.orgao,
      orgao_codigo: c.orgao_codigo,
      fornecedor: c.fornecedor,
      cnpj_fornecedor: c.cnpj_fornecedor,
      valor_inicial: c.valor_inicial,
      valor_final: c.valor_final ?? c.valor_inicial,
      data_assinatura: c.data_assinatura,
      modalidade: c.modalidade,
      situacao: c.situacao,
    }),
  );

export type ContractInput = z.input<typeof contractSchema>;
