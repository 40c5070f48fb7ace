// Value increases: a final value above the initial by more than the legal ceiling on additions.
import type { Finding } from '../types.js';
import { brl, dateBr, makeFinding, pct } from './common.js';
import type { DetectorOptions } from './options.js';
import { type ContractStore, NO_DAY } from './store.js';

export function detectValueIncreases(store: ContractStore, opts: DetectorOptions): Finding[] {
  const findings: Finding[] = [];
  const limit = opts.valueIncreaseLimit;
  for (let r = 0; r < store.size; r++) {
    const vi = store.vi[r]!;
    const vf = store.vf[r]!;
    if (!(vi > 0)) continue;
    const increase = (vf - vi) / vi;
    if (!(increase > limit)) continue;
    const orgName = store.orgNames[store.org[r]!]!;
    const supName = store.supNames[store.sup[r]!]!;
    findings.push(
      makeFinding(
        store,
        {
          type: 'value_increase',
          severity: 0.5 + 0.5 * Math.min(1, (increase - limit) / Math.max(1e-9, 1 - limit)),
          // Reforms of buildings and equipment may legally reach 50%, so a smaller excess is less certain.
          confidence: increase > 0.5 ? 0.9 : 0.75,
          title: `Aumento de ${pct(increase)} no valor do contrato ${store.ids[r]}`,
          explanation:
            `O contrato ${store.ids[r]} (órgão: ${orgName}; fornecedor: ${supName}), ${signed(store.day[r]!)}, ` +
            `passou de ${brl(vi)} (valor inicial) para ${brl(vf)} (valor final), um aumento de ${pct(increase)}. ` +
            `Acréscimos por aditivo são limitados a ${pct(limit, 0)} do valor inicial (Lei 8.666/1993, art. 65, ` +
            '§ 1º; Lei 14.133/2021, art. 125), ou 50% em reformas de edifício ou equipamento. ' +
            'Verifique os termos aditivos do contrato.',
          rows: [r],
          evidence: {
            orgao: orgName,
            orgao_codigo: store.orgCodes[store.org[r]!],
            fornecedor: supName,
            cnpj_fornecedor: store.supCnpjs[store.sup[r]!],
            valor_inicial: vi,
            valor_final: vf,
            increase: Number(increase.toFixed(4)),
            legal_limit: limit,
          },
        },
        opts.maxContractIdsPerFinding,
      ),
    );
  }
  return findings;
}

const signed = (day: number) =>
  day === NO_DAY ? 'sem data de assinatura válida' : `assinado em ${dateBr(day)}`;
