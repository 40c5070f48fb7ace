// Price outliers: a contract far above comparable ones (same object key and modalidade), by median and MAD.
import type { Finding } from '../types.js';
import { brl, byId, cents, makeFinding, median, num } from './common.js';
import type { DetectorOptions } from './options.js';
import type { ContractStore } from './store.js';

// Iglewicz & Hoaglin (1993): 0.6745 makes MAD comparable to a standard deviation; when more than
// half the values are equal (MAD = 0) the mean absolute deviation stands in, scaled by 1.253314.
const MAD_SCALE = 0.6745;
const MEAN_AD_SCALE = 1.253314;

export function detectPriceOutliers(store: ContractStore, opts: DetectorOptions): Finding[] {
  const nMods = Math.max(1, store.mods.length);
  const groups = new Map<number, number[]>();
  for (let r = 0; r < store.size; r++) {
    if (!(store.vi[r]! > 0) || store.obj[r]! < 0 || store.objKeys[store.obj[r]!] === '') continue;
    const key = store.obj[r]! * nMods + store.mod[r]!;
    const rows = groups.get(key);
    if (rows) rows.push(r);
    else groups.set(key, [r]);
  }

  const findings: Finding[] = [];
  for (const rows of groups.values()) {
    const n = rows.length;
    if (n < opts.minGroupSize) continue;
    const values = Float64Array.from(rows, (r) => store.vi[r]!).sort();
    const med = median(values);
    const deviations = values.map((v) => Math.abs(v - med)).sort();
    const mad = median(deviations);
    let meanAd = 0;
    for (const d of deviations) meanAd += d;
    meanAd /= n;
    if (mad === 0 && meanAd === 0) continue;
    const score = (v: number) =>
      mad > 0 ? (MAD_SCALE * (v - med)) / mad : (v - med) / (MEAN_AD_SCALE * meanAd);

    // The contracts closest to the median are the ones a reader should compare against.
    const comparables = [...rows]
      .sort((a, b) => Math.abs(store.vi[a]! - med) - Math.abs(store.vi[b]! - med) || byId(store, a, b))
      .slice(0, 5)
      .map((r) => store.ids[r]!);

    for (const r of rows) {
      const v = store.vi[r]!;
      const z = score(v);
      const ratio = v / med;
      if (!(z > opts.priceZThreshold) || ratio < opts.priceMinRatio) continue;
      const label = store.objLabels[store.obj[r]!]!;
      const modalidade = store.mods[store.mod[r]!]!;
      findings.push(
        makeFinding(
          store,
          {
            type: 'price_outlier',
            severity: 0.5 + 0.25 * Math.log2(ratio / 2),
            confidence: 0.5 + 0.4 * Math.min(1, (n - opts.minGroupSize) / 20),
            title: `Preço atípico: ${num(ratio)}× a mediana de contratos comparáveis`,
            explanation:
              `O contrato ${store.ids[r]} (órgão: ${store.orgNames[store.org[r]!]}; fornecedor: ` +
              `${store.supNames[store.sup[r]!]}) tem valor inicial de ${brl(v)}, ${num(ratio)} vezes a mediana de ` +
              `${brl(med)} do grupo de ${n} contratos comparáveis (objeto semelhante a "${label}", modalidade ` +
              `${modalidade}). ` +
              `O escore z modificado (mediana e desvio absoluto mediano) é ${num(z)}, acima do limite de ` +
              `${num(opts.priceZThreshold)}. Compare com os contratos ${comparables.filter((id) => id !== store.ids[r]).join(', ')}.`,
            rows: [r],
            evidence: {
              valor_inicial: v,
              group_key: store.objKeys[store.obj[r]!],
              group_label: label,
              modalidade,
              group_size: n,
              group_median: cents(med),
              group_mad: cents(mad),
              modified_z: Number(z.toFixed(2)),
              ratio_to_median: Number(ratio.toFixed(2)),
              z_threshold: opts.priceZThreshold,
              comparable_contract_ids: comparables.filter((id) => id !== store.ids[r]),
            },
          },
          opts.maxContractIdsPerFinding,
        ),
      );
    }
  }
  return findings;
}
