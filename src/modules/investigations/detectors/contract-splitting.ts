// Contract splitting: several contracts, each just under the dispensa limit, that together exceed it.
import type { Finding } from '../types.js';
import { brl, byId, cents, dateBr, dateIso, makeFinding, pct } from './common.js';
import { type DetectorOptions, thresholdFor } from './options.js';
import { type ContractStore, NO_DAY } from './store.js';

const yearOf = (month: number) => Math.floor(month / 12);

export function detectContractSplitting(store: ContractStore, opts: DetectorOptions): Finding[] {
  const nSups = Math.max(1, store.supCnpjs.length);
  const candidates = new Map<number, number[]>();
  for (let r = 0; r < store.size; r++) {
    if (store.day[r] === NO_DAY) continue;
    const v = store.vi[r]!;
    const limit = thresholdFor(opts, yearOf(store.month[r]!));
    if (v < opts.splittingLowerFraction * limit || v >= limit) continue;
    const key = store.org[r]! * nSups + store.sup[r]!;
    const rows = candidates.get(key);
    if (rows) rows.push(r);
    else candidates.set(key, [r]);
  }

  const findings: Finding[] = [];
  for (const rows of candidates.values()) {
    if (rows.length < opts.splittingMinContracts) continue;
    rows.sort((a, b) => store.day[a]! - store.day[b]! || byId(store, a, b));
    // Greedy windows from the earliest contract: each contract belongs to at most one finding.
    let i = 0;
    while (i < rows.length) {
      const start = store.day[rows[i]!]!;
      let j = i;
      while (j + 1 < rows.length && store.day[rows[j + 1]!]! - start <= opts.splittingWindowDays) j++;
      const cluster = rows.slice(i, j + 1);
      const limit = thresholdFor(opts, yearOf(store.month[rows[i]!]!));
      const sum = cluster.reduce((s, r) => s + store.vi[r]!, 0);
      if (cluster.length >= opts.splittingMinContracts && sum > limit) {
        findings.push(splitFinding(store, opts, cluster, sum, limit));
        i = j + 1;
      } else {
        i++;
      }
    }
  }
  return findings;
}

function splitFinding(
  store: ContractStore,
  opts: DetectorOptions,
  cluster: number[],
  sum: number,
  limit: number,
): Finding {
  const first = cluster[0]!;
  const last = cluster[cluster.length - 1]!;
  const orgName = store.orgNames[store.org[first]!]!;
  const supName = store.supNames[store.sup[first]!]!;
  const spanDays = store.day[last]! - store.day[first]!;
  const allDirect = cluster.every((r) => store.modKinds[store.mod[r]!] !== 'competitive');
  const n = cluster.length;
  const list = cluster
    .map((r) => `${store.ids[r]} (${dateBr(store.day[r]!)}, ${brl(store.vi[r]!)})`)
    .join('; ');
  return makeFinding(
    store,
    {
      type: 'contract_splitting',
      severity: 0.55 + 0.1 * (n - 2) + 0.15 * Math.min(1, sum / limit - 1),
      confidence: 0.6 + 0.08 * (n - 2) + (allDirect ? 0.1 : 0),
      title: `Possível fracionamento: ${n} contratos do órgão ${orgName} com ${supName} em ${spanDays} dias`,
      explanation:
        `O órgão ${orgName} assinou ${n} contratos com ${supName} (CNPJ ${store.supCnpjs[store.sup[first]!]}) ` +
        `entre ${dateBr(store.day[first]!)} e ${dateBr(store.day[last]!)}, cada um entre ` +
        `${pct(opts.splittingLowerFraction, 0)} e 100% do limite de dispensa de ${brl(limit)} ` +
        `(Lei 14.133/2021, art. 75, II, valor atualizado por decreto). Somados chegam a ${brl(sum)}, ` +
        `acima do limite: ${list}. Para aferir o limite, a lei manda somar as despesas com objetos da mesma ` +
        'natureza no exercício (art. 75, § 1º); dividir uma compra para dispensar a licitação é fracionamento ' +
        'irregular. Verifique se os objetos são da mesma natureza.',
      rows: cluster,
      evidence: {
        orgao: orgName,
        orgao_codigo: store.orgCodes[store.org[first]!],
        fornecedor: supName,
        cnpj_fornecedor: store.supCnpjs[store.sup[first]!],
        threshold: limit,
        threshold_year: yearOf(store.month[first]!),
        lower_fraction: opts.splittingLowerFraction,
        total_value: cents(sum),
        contracts: n,
        window_days: opts.splittingWindowDays,
        span_days: spanDays,
        first_date: dateIso(store.day[first]!),
        last_date: dateIso(store.day[last]!),
        values: cluster.map((r) => store.vi[r]!),
        modalidades: [...new Set(cluster.map((r) => store.mods[store.mod[r]!]!))],
      },
    },
    opts.maxContractIdsPerFinding,
  );
}
