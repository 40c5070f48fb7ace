// Supplier concentration: one supplier holding most of an agency's contracted value.
import type { Finding } from '../types.js';
import { brl, cents, makeFinding, pct } from './common.js';
import type { DetectorOptions } from './options.js';
import type { ContractStore } from './store.js';

interface Pair {
  org: number;
  sup: number;
  value: number;
  rows: number[];
}

export function detectSupplierConcentration(store: ContractStore, opts: DetectorOptions): Finding[] {
  const nOrgs = store.orgCodes.length;
  const orgValue = new Float64Array(nOrgs);
  const orgCount = new Int32Array(nOrgs);
  const orgSuppliers = new Int32Array(nOrgs);
  const pairs = new Map<number, Pair>();
  const nSups = Math.max(1, store.supCnpjs.length);
  for (let r = 0; r < store.size; r++) {
    const org = store.org[r]!;
    const sup = store.sup[r]!;
    const value = store.vf[r]!;
    orgValue[org]! += value;
    orgCount[org]!++;
    const key = org * nSups + sup;
    let pair = pairs.get(key);
    if (!pair) {
      pair = { org, sup, value: 0, rows: [] };
      pairs.set(key, pair);
      orgSuppliers[org]!++;
    }
    pair.value += value;
    pair.rows.push(r);
  }

  const findings: Finding[] = [];
  for (const p of pairs.values()) {
    const total = orgValue[p.org]!;
    const count = orgCount[p.org]!;
    if (count < opts.concentrationMinContracts || p.rows.length < opts.concentrationMinSupplierContracts)
      continue;
    if (!(total > 0)) continue;
    const share = p.value / total;
    if (!(share > opts.concentrationShare)) continue;
    const orgName = store.orgNames[p.org]!;
    const supName = store.supNames[p.sup]!;
    const cnpj = store.supCnpjs[p.sup]!;
    findings.push(
      makeFinding(
        store,
        {
          type: 'supplier_concentration',
          severity: 0.5 + 0.8 * (share - 0.5),
          confidence: 0.5 + 0.4 * Math.min(1, (count - opts.concentrationMinContracts) / 20),
          title: `${orgName}: ${supName} concentra ${pct(share)} do valor contratado`,
          explanation:
            `${supName} (CNPJ ${cnpj}) recebeu ${p.rows.length} dos ${count} contratos do órgão ${orgName} ` +
            `(código ${store.orgCodes[p.org]}) no período analisado, somando ${brl(p.value)} de ${brl(total)}: ` +
            `${pct(share)} do valor total, acima do limite de referência de ${pct(opts.concentrationShare, 0)}. ` +
            `O órgão contratou ${orgSuppliers[p.org]} fornecedores distintos. Concentração não é ilegal por si só, ` +
            'mas merece verificar se houve competição efetiva nas contratações.',
          rows: p.rows,
          evidence: {
            orgao: orgName,
            orgao_codigo: store.orgCodes[p.org],
            fornecedor: supName,
            cnpj_fornecedor: cnpj,
            supplier_value: cents(p.value),
            agency_value: cents(total),
            share: Number(share.toFixed(4)),
            share_threshold: opts.concentrationShare,
            supplier_contracts: p.rows.length,
            agency_contracts: count,
            agency_suppliers: orgSuppliers[p.org],
          },
        },
        opts.maxContractIdsPerFinding,
      ),
    );
  }
  return findings;
}
