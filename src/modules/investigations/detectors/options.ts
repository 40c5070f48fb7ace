// Detector thresholds: every number a finding depends on, with its legal or statistical source.

export interface DetectorOptions {
  /**
   * Dispensa limit for "other services and purchases" (Lei 14.133/2021 art. 75 II), used for a
   * year missing from `biddingThresholdByYear`. Default R$ 57.208,33 (Decreto 11.317/2022, for 2023).
   */
  biddingThreshold: number;
  /**
   * The art. 75 II limit as updated each 1 January by decree (art. 182), by year of signature.
   * Default: 2022–2026. Passing `biddingThreshold` without this clears the table, so a caller's
   * single threshold is applied to every year.
   */
  biddingThresholdByYear: Readonly<Record<number, number>>;
  /** "Just under the limit" starts at this fraction of it. Default 0.8. */
  splittingLowerFraction: number;
  /** Split contracts fall within this many days of the first. Default 30. */
  splittingWindowDays: number;
  /** Contracts from one agency to one supplier that make a split. Default 2. */
  splittingMinContracts: number;
  /** Legal ceiling on additions (Lei 8.666 art. 65 §1º, Lei 14.133 art. 125). Default 0.25. */
  valueIncreaseLimit: number;
  /** One supplier's share of an agency's contracted value above which it is flagged. Default 0.5. */
  concentrationShare: number;
  /** An agency needs this many contracts before shares mean anything. Default 5. */
  concentrationMinContracts: number;
  /** The supplier needs this many contracts (one big contract is not concentration). Default 2. */
  concentrationMinSupplierContracts: number;
  /** Comparable contracts (same object key and modalidade) needed for a price baseline. Default 5. */
  minGroupSize: number;
  /** Modified z-score (Iglewicz–Hoaglin) above which a price is an outlier. Default 3.5. */
  priceZThreshold: number;
  /** …and it must also be at least this multiple of the group median. Default 2. */
  priceMinRatio: number;
  /** A month is a spike at this multiple of the agency's median month. Default 3. */
  spikeFactor: number;
  /** …with at least this many contracts in it. Default 5. */
  spikeMinContracts: number;
  /** …and a Poisson tail probability (count at or above, given the baseline) below this. Default 0.001. */
  spikeMaxPValue: number;
  /** Months the data must span before a monthly baseline means anything. Default 6. */
  spikeMinMonths: number;
  /** Dispensa + inexigibilidade share of an agency's value above which it is flagged. Default 0.5. */
  directShare: number;
  /** …or their share of its contract count above this. Default 0.8. */
  directCountShare: number;
  /** An agency needs this many contracts before its direct-contracting share is judged. Default 5. */
  directMinContracts: number;
  /** At most this many contract ids in one finding; `evidence.contracts_total` has the full count. */
  maxContractIdsPerFinding: number;
}

/** Art. 75 II values as published by decree for each year (Lei 14.133/2021 art. 182). */
export const DISPENSA_LIMITS_BY_YEAR: Readonly<Record<number, number>> = {
  2022: 54_020.41, // Decreto 10.922/2021
  2023: 57_208.33, // Decreto 11.317/2022
  2024: 59_906.02, // Decreto 11.871/2023
  2025: 62_725.59, // Decreto 12.343/2024
  2026: 65_492.11, // Decreto 12.807/2025
};

export const DEFAULT_DETECTOR_OPTIONS: DetectorOptions = {
  biddingThreshold: 57_208.33,
  biddingThresholdByYear: DISPENSA_LIMITS_BY_YEAR,
  splittingLowerFraction: 0.8,
  splittingWindowDays: 30,
  splittingMinContracts: 2,
  valueIncreaseLimit: 0.25,
  concentrationShare: 0.5,
  concentrationMinContracts: 5,
  concentrationMinSupplierContracts: 2,
  minGroupSize: 5,
  priceZThreshold: 3.5,
  priceMinRatio: 2,
  spikeFactor: 3,
  spikeMinContracts: 5,
  spikeMaxPValue: 0.001,
  spikeMinMonths: 6,
  directShare: 0.5,
  directCountShare: 0.8,
  directMinContracts: 5,
  maxContractIdsPerFinding: 500,
};

export function resolveOptions(opts: Partial<DetectorOptions> = {}): DetectorOptions {
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const merged = { ...DEFAULT_DETECTOR_OPTIONS, ...defined } as DetectorOptions;
  if (opts.biddingThreshold !== undefined && opts.biddingThresholdByYear === undefined) {
    merged.biddingThresholdByYear = {};
  }
  return merged;
}

/** The dispensa limit in force in a year. */
export function thresholdFor(opts: DetectorOptions, year: number): number {
  return opts.biddingThresholdByYear[year] ?? opts.biddingThreshold;
}
