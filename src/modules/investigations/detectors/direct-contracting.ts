// Direct contracting: an agency spending most of its money through dispensa or inexigibilidade.
import type { Finding } from '../types.js';
import { brl, cents, makeFinding, pct } from './common.js';
import type { DetectorOptions } from './options.js';
import type { ContractStore } from './store.js';

export function detectDirectContracting(store: ContractStore, opts: DetectorOptions): Finding[] {
  const nOrgs = store.orgCodes.length;
  const count = new Int32Array(nOrgs);
  const value = new Float64Array(nOrgs);
  const directCount = new Int32Array(nOrgs);
  const directValue = new Float64Array(nOrgs);
  const dispensaCount = new Int32Array(nOrgs);
  for (let r = 0; r < store.size; r++) {
    const org = store.org[r]!;
    const v = store.vf[r]!;
    count[org]!++;
    value[org]! += v;
    const kind = store.modKinds[store.mod[r]!];
    if (kind === 'competitive') continue;
    directCount[org]!++;
    directValue[org]! += v;
    if (kind === 'dispensa') dispensaCount[org]!++;
  }

  const flagged = new Map<number, number[]>();
  for (let org = 0; org < nOrgs; org++) {
    if (count[org]! < opts.directMinContracts || directCount[org]! < 2) continue;
    const valueShare = value[org]! > 0 ? directValue[org]! / value[org]! : 0;
    const countShare = directCount[org]! / count[org]!;
    if (valueShare > opts.directShare || countShare > opts.directCountShare) flagged.set(org, []);
  }
  if (flagged.size === 0) return [];
  for (let r = 0; r < store.size; r++) {
    const rows = flagged.get(store.org[r]!);
    if (rows && store.modKinds[store.mod[r]!] !== 'competitive') rows.push(r);
  }

  const findings: Finding[] = [];
  for (const [org, rows] of flagged) {
    const orgName = store.orgNames[org]!;
    const valueShare = value[org]! > 0 ? directValue[org]! / value[org]! : 0;
    const countShare = directCount[org]! / count[org]!;
    const byValue = valueShare > opts.directShare;
    findings.push(
      makeFinding(
        store,
        {
          type: 'direct_contracting',
          severity: 0.3 + 0.6 * valueShare + 0.1 * countShare,
          confidence: 0.5 + 0.4 * Math.min(1, (count[org]! - opts.directMinContracts) / 20),
          title: byValue
            ? `${orgName}: ${pct(valueShare)} do valor contratado sem licitação`
            : `${orgName}: ${pct(countShare)} dos contratos sem licitação`,
          explanation:
            `Dos ${count[org]} contratos do órgão ${orgName} (código ${store.orgCodes[org]}), ${directCount[org]} ` +
            `(${pct(countShare)}) foram feitos sem licitação — ${dispensaCount[org]} por dispensa e ` +
            `${directCount[org]! - dispensaCount[org]!} por inexigibilidade —, somando ${brl(directValue[org]!)} ` +
            `de ${brl(value[org]!)} (${pct(valueShare)} do valor). O limite de referência é ` +
            `${pct(opts.directShare, 0)} do valor ou ${pct(opts.directCountShare, 0)} dos contratos. ` +
            'A contratação direta é exceção (Lei 14.133/2021, arts. 72 a 75) e cada caso precisa de justificativa; ' +
            'os contratos estão listados para conferência.',
          rows,
          evidence: {
            orgao: orgName,
            orgao_codigo: store.orgCodes[org],
            agency_contracts: count[org],
            agency_value: cents(value[org]!),
            direct_contracts: directCount[org],
            dispensa_contracts: dispensaCount[org],
            inexigibilidade_contracts: directCount[org]! - dispensaCount[org]!,
            direct_value: cents(directValue[org]!),
            value_share: Number(valueShare.toFixed(4)),
            count_share: Number(countShare.toFixed(4)),
            value_share_threshold: opts.directShare,
            count_share_threshold: opts.directCountShare,
          },
        },
        opts.maxContractIdsPerFinding,
      ),
    );
  }
  return findings;
}
