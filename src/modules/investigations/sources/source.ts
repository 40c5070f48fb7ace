// What every contract source is: the Portal da Transparência, the bundled sample, an upload (held or stored).
import type { SelectionFilters } from '../../query/select.js';
import type { Contract } from '../types.js';

/** What a source is asked for: the query module's structured selection (see query/select.ts). */
export type ContractFilters = SelectionFilters;

export interface ContractSource {
  kind: 'portal' | 'sample' | 'upload';
  /** True for the bundled synthetic dataset: every answer built on it must say so. */
  sample: boolean;
  /** One line for logs: what serves the contracts. */
  describe: string;
  /** Pages of contracts; stops early when `signal` aborts (by throwing its reason). */
  pages(filters: ContractFilters, signal: AbortSignal): AsyncIterable<Contract[]>;
}
