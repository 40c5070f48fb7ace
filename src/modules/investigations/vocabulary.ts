// The frontend's investigation vocabulary (API.md §6.1) mapped onto the native one: ONE table, read by schemas, shaping, docs and tests.
import type { AnomalyType } from './types.js';

/** Frontend anomaly type → the detector that answers it. The README's table is checked against this. */
export const FRONTEND_ANOMALY_TYPES = {
  price: 'price_outlier',
  vendor: 'supplier_concentration',
  temporal: 'temporal_spike',
  payment: 'value_increase',
  duplicate: 'contract_splitting',
  pattern: 'direct_contracting',
} as const satisfies Record<string, AnomalyType>;

export type FrontendAnomalyType = keyof typeof FRONTEND_ANOMALY_TYPES;

/** Detector → the frontend's name for its findings (the inverse of the table above). */
export const FRONTEND_TYPE_OF = Object.fromEntries(
  Object.entries(FRONTEND_ANOMALY_TYPES).map(([front, native]) => [native, front]),
) as Record<AnomalyType, FrontendAnomalyType>;

/**
 * Frontend filter name → native filter name. `organization` is an agency code (digits) or a name:
 * a code filters `orgao_codigo`; a name's words must all appear in the contract (the `query` filter,
 * which matches the object, the supplier and the agency's name).
 */
export const FRONTEND_FILTERS = {
  organization: 'orgao_codigo | query',
  start_date: 'data_inicio',
  end_date: 'data_fim',
} as const;

/** The `data_source` values the frontend may send, and which of them have data today. */
export const FRONTEND_DATA_SOURCES = ['contracts', 'expenses', 'agreements', 'biddings', 'servants'] as const;
export const SUPPORTED_DATA_SOURCES = ['contracts', 'upload'] as const;

/** Maps the frontend's filter names onto native ones; native names win when both are sent. */
export function nativeFilters<
  T extends {
    organization?: string;
    start_date?: string;
    end_date?: string;
    orgao_codigo?: string;
    data_inicio?: string;
    data_fim?: string;
    query?: string;
  },
>(f: T): Omit<T, 'organization' | 'start_date' | 'end_date'> {
  const { organization, start_date, end_date, ...native } = f;
  const out: Omit<T, 'organization' | 'start_date' | 'end_date'> & Record<string, unknown> = { ...native };
  if (start_date !== undefined) out.data_inicio ??= start_date;
  if (end_date !== undefined) out.data_fim ??= end_date;
  const org = organization?.trim();
  if (org) {
    if (/^\d+$/.test(org)) out.orgao_codigo ??= org;
    else out.query = out.query ? `${out.query} ${org}` : org;
  }
  return out;
}
