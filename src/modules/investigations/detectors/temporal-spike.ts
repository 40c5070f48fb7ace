// Temporal spikes: an agency's month far above its own usual month, year-end rushes included.
import type { Finding } from '../types.js';
import { brl, cents, makeFinding, median, monthKey, monthName, num } from './common.js';
import type { DetectorOptions } from './options.js';
import { type ContractStore, NO_DAY } from './store.js';

const LOG_MAD_Z = 3.5;

/** ln(n!) — exact below 30, Stirling's series above (error < 1e-10 there). */
function lnFactorial(n: number): number {
  if (n < 30) {
    let s = 0;
    for (let k = 2; k <= n; k++) s += Math.log(k);
    return s;
  }
  return n * Math.log(n) - n + 0.5 * Math.log(2 * Math.PI * n) + 1 / (12 * n) - 1 / (360 * n ** 3);
}

/** P(X ≥ c) for X ~ Poisson(λ), summed upward from c (fast when c is well above λ, as here). */
export function poissonTail(c: number, lambda: number): number {
  if (c <= 0) return 1;
  let term = Math.exp(-lambda + c * Math.log(lambda) - lnFactorial(c));
  let sum = 0;
  for (let k = c; k < c + 10_000; k++) {
    sum += term;
    term *= lambda / (k + 1);
    if (term < sum * 1e-12) break;
  }
  return Math.min(1, sum);
}

/** Median of `values` padded with `zeros` zeros, without building the padded array. */
function medianWithZeros(sortedValues: Float64Array, zeros: number): number {
  const n = sortedValues.length + zeros;
  const at = (i: number) => (i < zeros ? 0 : sortedValues[i - zeros]!);
  return n % 2 ? at(n >> 1) : (at((n >> 1) - 1) + at(n >> 1)) / 2;
}

interface Cell {
  org: number;
  month: number;
  count: number;
  value: number;
}

export function detectTemporalSpikes(store: ContractStore, opts: DetectorOptions): Finding[] {
  let minM = Number.POSITIVE_INFINITY;
  let maxM = Number.NEGATIVE_INFINITY;
  for (let r = 0; r < store.size; r++) {
    const m = store.month[r]!;
    if (m === NO_DAY) continue;
    if (m < minM) minM = m;
    if (m > maxM) maxM = m;
  }
  const span = maxM - minM + 1;
  if (!(span >= opts.spikeMinMonths)) return [];

  const cells = new Map<number, Cell>();
  for (let r = 0; r < store.size; r++) {
    const m = store.month[r]!;
    if (m === NO_DAY) continue;
    const key = store.org[r]! * span + (m - minM);
    let cell = cells.get(key);
    if (!cell) {
      cell = { org: store.org[r]!, month: m, count: 0, value: 0 };
      cells.set(key, cell);
    }
    cell.count++;
    cell.value += store.vf[r]!;
  }
  const byOrg = new Map<number, Cell[]>();
  for (const cell of cells.values()) {
    const list = byOrg.get(cell.org);
    if (list) list.push(cell);
    else byOrg.set(cell.org, [cell]);
  }

  const flagged = new Map<number, { cell: Cell; draft: Omit<Draft, 'rows'> }>();
  for (const [org, months] of byOrg) {
    const total = months.reduce((s, c) => s + c.count, 0);
    if (total < opts.spikeMinContracts) continue;
    const counts = Float64Array.from(months, (c) => c.count).sort();
    const baseline = Math.max(1, medianWithZeros(counts, span - months.length));
    const logValues = Float64Array.from(months, (c) => Math.log10(Math.max(1, c.value))).sort();
    const logMedian = median(logValues);
    const logMad = median(logValues.map((v) => Math.abs(v - logMedian)).sort());
    const valueMedian = 10 ** logMedian;
    const valueTestable = months.length >= opts.spikeMinMonths && logMad > 0;

    for (const cell of months) {
      if (cell.count < opts.spikeMinContracts) continue;
      const p = poissonTail(cell.count, baseline);
      const countSpike = cell.count >= opts.spikeFactor * baseline && p < opts.spikeMaxPValue;
      const valueZ = valueTestable
        ? (0.6745 * (Math.log10(Math.max(1, cell.value)) - logMedian)) / logMad
        : 0;
      const valueSpike = valueTestable && valueZ > LOG_MAD_Z && cell.value >= opts.spikeFactor * valueMedian;
      if (!countSpike && !valueSpike) continue;
      const key = org * span + (cell.month - minM);
      flagged.set(key, {
        cell,
        draft: spikeDraft(store, opts, cell, {
          baseline,
          p,
          valueMedian,
          valueZ,
          countSpike,
          valueSpike,
          span,
        }),
      });
    }
  }
  if (flagged.size === 0) return [];

  const rows = new Map<number, number[]>();
  for (let r = 0; r < store.size; r++) {
    const m = store.month[r]!;
    if (m === NO_DAY) continue;
    const key = store.org[r]! * span + (m - minM);
    if (!flagged.has(key)) continue;
    const list = rows.get(key);
    if (list) list.push(r);
    else rows.set(key, [r]);
  }
  return [...flagged].map(([key, f]) =>
    makeFinding(store, { ...f.draft, rows: rows.get(key) ?? [] }, opts.maxContractIdsPerFinding),
  );
}

type Draft = Parameters<typeof makeFinding>[1];

interface Stats {
  baseline: number;
  p: number;
  valueMedian: number;
  valueZ: number;
  countSpike: boolean;
  valueSpike: boolean;
  span: number;
}

function spikeDraft(store: ContractStore, opts: DetectorOptions, cell: Cell, s: Stats): Omit<Draft, 'rows'> {
  const orgName = store.orgNames[cell.org]!;
  const yearEnd = cell.month % 12 === 11;
  const ratio = cell.count / s.baseline;
  const valueRatio = cell.value / s.valueMedian;
  const when = monthName(cell.month);
  const triggers = [s.countSpike ? 'count' : null, s.valueSpike ? 'value' : null].filter(Boolean);
  const countText = s.countSpike
    ? `assinou ${cell.count} contratos em ${when}, ${num(ratio)} vezes a sua mediana de ${num(s.baseline)} por mês ` +
      `nos ${s.span} meses analisados (se o ritmo fosse o habitual, a chance de chegar a ${cell.count} seria ` +
      `de ${s.p < 1e-6 ? 'menos de 1 em 1 milhão' : `${(s.p * 100).toFixed(4).replace('.', ',')}%`})`
    : `assinou ${cell.count} contratos em ${when}`;
  const valueText = s.valueSpike
    ? `; o valor do mês, ${brl(cell.value)}, é ${num(valueRatio)} vezes o valor mediano dos seus meses com contratos (${brl(s.valueMedian)})`
    : `, somando ${brl(cell.value)}`;
  return {
    type: 'temporal_spike',
    severity:
      0.45 + 0.1 * Math.log2(Math.max(ratio, valueRatio, 1)) + (s.countSpike && s.valueSpike ? 0.1 : 0),
    confidence: Math.min(0.95, s.countSpike ? 0.55 + 0.05 * -Math.log10(Math.max(s.p, 1e-300)) : 0.6),
    title: yearEnd
      ? `Corrida de fim de ano: ${orgName} assinou ${cell.count} contratos em ${when}`
      : `Pico de contratações: ${orgName} assinou ${cell.count} contratos em ${when}`,
    explanation:
      `O órgão ${orgName} (código ${store.orgCodes[cell.org]}) ${countText}${valueText}. ` +
      (yearEnd
        ? 'Concentrar contratações em dezembro para empenhar o orçamento antes do fim do exercício ' +
          'reduz o tempo de planejamento e de concorrência; confira a justificativa e a pesquisa de preços.'
        : 'Confira se houve um motivo (emergência, novo programa) ou se compras foram aceleradas sem planejamento.'),
    evidence: {
      orgao: orgName,
      orgao_codigo: store.orgCodes[cell.org],
      month: monthKey(cell.month),
      year_end: yearEnd,
      triggers,
      month_contracts: cell.count,
      baseline_contracts_per_month: s.baseline,
      count_ratio: Number(ratio.toFixed(2)),
      poisson_p_value: Number(s.p.toPrecision(3)),
      month_value: cents(cell.value),
      baseline_value_per_active_month: cents(s.valueMedian),
      value_ratio: Number(valueRatio.toFixed(2)),
      months_analyzed: s.span,
      spike_factor: opts.spikeFactor,
    },
  };
}
