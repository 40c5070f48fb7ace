// "Quais contratos … são suspeitos?": the detectors over the selected contracts, as a chat answer.
import { createDetectorRun } from '../investigations/detectors/index.js';
import { ANOMALY_TYPES, type Contract, type Finding } from '../investigations/types.js';

// Words that ask for suspects rather than a list.
const SUSPICION =
  /\b(suspeit\w*|irregular\w*|anomal\w*|fraud\w*|superfatur\w*|estranh\w*|indicios?|sobrepreco|desvios?|fracionad\w*|fracionamento|problema\w*|red flags?)\b/;

const fold = (s: string) =>
  s
    .toLowerCase()
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '');

export function asksForSuspects(message: string): boolean {
  return SUSPICION.test(fold(message));
}

export interface SuspectScan {
  add(page: Contract[]): void;
  /** The findings, most severe first, with the contracts they name. */
  run(): Array<{ finding: Finding; contracts: Contract[] }>;
}

/** Collects the selected contracts and runs all six detectors over them. */
export function createSuspectScan(): SuspectScan {
  const detectors = createDetectorRun(ANOMALY_TYPES);
  const byId = new Map<string, Contract>();
  return {
    add(page) {
      detectors.add(page);
      for (const c of page) byId.set(c.id, c);
    },
    run() {
      const findings = detectors.steps().flatMap((s) => s.run());
      findings.sort((a, b) => b.severity - a.severity || b.confidence - a.confidence);
      return findings.map((finding) => ({
        finding,
        contracts: finding.contract_ids.map((id) => byId.get(id)).filter((c): c is Contract => !!c),
      }));
    },
  };
}

const brl = new Intl.NumberFormat('pt-BR', { style: 'currency', currency: 'BRL' });

export function severityLabel(severity: number): 'alta' | 'média' | 'baixa' {
  return severity >= 0.7 ? 'alta' : severity >= 0.4 ? 'média' : 'baixa';
}

/** The findings as Markdown lines: what, which contract (number), why, how severe. */
export function suspectLines(found: ReturnType<SuspectScan['run']>, shown: number): string[] {
  return found.slice(0, shown).map(({ finding, contracts }, i) => {
    const first = contracts[0];
    const more = contracts.length > 1 ? ` e mais ${contracts.length - 1}` : '';
    const which = first
      ? `contrato nº ${first.numero ?? first.id} (${first.objeto} — ${first.fornecedor} — ${brl.format(first.valor_final)}, ${first.orgao})${more}`
      : `${finding.contract_ids.length} contrato(s)`;
    return `${i + 1}. **${finding.title}** — ${which}. Por quê: ${finding.explanation} Severidade ${severityLabel(finding.severity)} (${finding.severity.toFixed(2)}).`;
  });
}
