// The detector run: accumulate contracts page by page, then one step per requested anomaly type.
import type { AnomalyType, Contract, Finding } from '../types.js';
import { sortFindings } from './common.js';
import { detectContractSplitting } from './contract-splitting.js';
import { detectDirectContracting } from './direct-contracting.js';
import { type DetectorOptions, resolveOptions } from './options.js';
import { detectPriceOutliers } from './price-outlier.js';
import { type ContractStore, createStore } from './store.js';
import { detectSupplierConcentration } from './supplier-concentration.js';
import { detectTemporalSpikes } from './temporal-spike.js';
import { detectValueIncreases } from './value-increase.js';

export { compareFindings, findingId } from './common.js';
export { DEFAULT_DETECTOR_OPTIONS, type DetectorOptions, DISPENSA_LIMITS_BY_YEAR } from './options.js';

export interface DetectorRun {
  /** Feed contracts in batches (pages); keeps compact aggregates, not whole objects, where it can. */
  add(batch: Contract[]): void;
  /** Contracts kept so far (a repeated id is counted once). */
  readonly recordsSeen: number;
  /** One step per requested detector, in order; the job runner checks cancellation between steps. */
  steps(): Array<{ type: AnomalyType; run(): Finding[] }>;
}

/** Each detector is a pure function of the accumulated contracts and the options. */
export const DETECTORS: Record<AnomalyType, (store: ContractStore, opts: DetectorOptions) => Finding[]> = {
  price_outlier: detectPriceOutliers,
  supplier_concentration: detectSupplierConcentration,
  contract_splitting: detectContractSplitting,
  value_increase: detectValueIncreases,
  temporal_spike: detectTemporalSpikes,
  direct_contracting: detectDirectContracting,
};

export function createDetectorRun(
  types: readonly AnomalyType[],
  opts: Partial<DetectorOptions> = {},
): DetectorRun {
  const options = resolveOptions(opts);
  const requested = [...new Set(types)];
  for (const t of requested) {
    if (!(t in DETECTORS)) throw new Error(`unknown anomaly type: ${t}`);
  }
  // Object keys cost a normalisation per contract; only price outliers need them.
  const writer = createStore({ objetoKeys: requested.includes('price_outlier') });
  return {
    add(batch) {
      writer.add(batch);
    },
    get recordsSeen() {
      return writer.store.size;
    },
    steps() {
      return requested.map((type) => ({
        type,
        run: () => sortFindings(DETECTORS[type](writer.store, options)),
      }));
    },
  };
}
