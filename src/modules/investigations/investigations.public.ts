// The frontend's investigation shapes (API.md §6.1): InvestigationStatus and InvestigationResults over the same rows as §6.
import { brl } from './detectors/common.js';
import type { FindingRow, InvestigationRow } from './investigations.repo.js';
import type { AnomalyType, Contract, Finding } from './types.js';
import { FRONTEND_TYPE_OF } from './vocabulary.js';

/**
 * The one cut of the numeric severity (0..1) into the frontend's three words: high from 0.7,
 * medium from 0.4, low below. The number stays in `metadata.severity_score`.
 */
export const SEVERITY_CUTS = { high: 0.7, medium: 0.4 } as const;

export function severityLabel(score: number): 'high' | 'medium' | 'low' {
  if (score >= SEVERITY_CUTS.high) return 'high';
  if (score >= SEVERITY_CUTS.medium) return 'medium';
  return 'low';
}

const TYPE_LABELS: Record<AnomalyType, string> = {
  price_outlier: 'preços fora do padrão',
  supplier_concentration: 'concentração de fornecedores',
  contract_splitting: 'possível fracionamento de despesas',
  value_increase: 'aumentos de valor dos contratos',
  temporal_spike: 'picos de contratação',
  direct_contracting: 'contratações sem licitação',
};

const PHASES: Record<string, string> = {
  queued: 'Na fila',
  requeued: 'Na fila (retomando após reinício do servidor)',
  retrying: 'Na fila (nova tentativa)',
  collecting: 'Coletando contratos',
  saving: 'Salvando resultados',
  completed: 'Concluída',
  failed: 'Falhou',
  cancelled: 'Cancelada',
};

/** The stored phase code as a Portuguese sentence the pages can show. */
export function phaseLabel(phase: string): string {
  const analysing = /^analyzing:(.+)$/.exec(phase);
  if (analysing) {
    const label = TYPE_LABELS[analysing[1] as AnomalyType];
    return label ? `Analisando ${label}` : 'Analisando contratos';
  }
  return PHASES[phase] ?? 'Processando';
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const isTerminal = (status: string) =>
  status === 'completed' || status === 'failed' || status === 'cancelled';

function titleOf(row: InvestigationRow): string {
  const q = row.query.trim();
  if (q) return q.length > 80 ? `${q.slice(0, 79).trimEnd()}…` : q;
  if (row.dataSource === 'upload') return 'Investigação de contratos enviados';
  return row.sampleData
    ? 'Investigação de contratos (dados de exemplo)'
    : 'Investigação de contratos públicos';
}

/** Linear extrapolation from the time spent so far; null until there is something to extrapolate. */
function estimatedCompletion(row: InvestigationRow, now = Date.now()): string | null {
  if (row.status === 'completed') return iso(row.completedAt);
  if (row.status !== 'running' || !row.startedAt || row.progress < 0.05) return null;
  const spent = now - row.startedAt.getTime();
  return new Date(now + (spent * (1 - row.progress)) / row.progress).toISOString();
}

/** InvestigationStatus: numbers never null, timestamps ISO or null, progress 0..1. */
export function publicStatus(row: InvestigationRow) {
  return {
    investigation_id: row.id,
    title: titleOf(row),
    status: row.status,
    progress: round3(Math.min(1, Math.max(0, row.progress))),
    current_phase: phaseLabel(row.currentPhase),
    records_processed: row.recordsProcessed,
    anomalies_detected: row.anomaliesDetected,
    estimated_completion: estimatedCompletion(row),
    created_at: iso(row.createdAt),
    started_at: iso(row.startedAt),
    completed_at: iso(row.completedAt),
  };
}

/** Where the contracts came from, as the results page's `metadata.sources` lists it. */
function sourcesOf(row: InvestigationRow): string[] {
  if (row.sourceKind === 'upload') return ['Contratos enviados pelo usuário'];
  if (row.sourceKind === 'sample')
    return ['Dados de exemplo (não são dados reais do Portal da Transparência)'];
  return ['Portal da Transparência do Governo Federal'];
}

// At most this many contracts of one finding are kept with it for the results page.
export const AFFECTED_CONTRACTS_MAX = 20;
/** Key of the finding's evidence that holds the affected contracts (not shown by the native routes). */
export const AFFECTED_KEY = 'affected_contracts';

/**
 * Contracts a run has seen, by id, so each finding can carry the contracts it names: the results
 * are read later, maybe on another instance, when the source (an upload, the Portal) is gone.
 * References to the pages' own objects, up to `max`; past that, findings carry ids only.
 */
export function createContractIndex(max: number) {
  const byId = new Map<string, Contract>();
  return {
    add(page: readonly Contract[]) {
      for (const c of page) if (byId.size < max && !byId.has(c.id)) byId.set(c.id, c);
    },
    /** True once `max` contracts are held: later ones are not kept. */
    get full() {
      return byId.size >= max;
    },
    /** Every contract held, in the order first seen. */
    contracts(): IterableIterator<Contract> {
      return byId.values();
    },
    /** The findings with their first contracts' data in `evidence.affected_contracts`. */
    attach(findings: Finding[]): Finding[] {
      return findings.map((f) => {
        const contracts = f.contract_ids
          .slice(0, AFFECTED_CONTRACTS_MAX)
          .map((id) => byId.get(id))
          .filter((c): c is Contract => c !== undefined);
        return contracts.length > 0 ? { ...f, evidence: { ...f.evidence, [AFFECTED_KEY]: contracts } } : f;
      });
    },
  };
}

/** Steps a citizen or journalist can take: the document to request under the LAI, and whom to ask. */
export function suggestedActions(type: AnomalyType, contracts: readonly Contract[]): string[] {
  const first = contracts[0];
  const orgao = first?.orgao ?? 'o órgão contratante';
  const numero = first ? `o contrato ${first.numero ?? first.id}` : 'os contratos citados';
  const lai = (doc: string) =>
    `Peça a ${orgao}, pela Lei de Acesso à Informação (Fala.BR, falabr.cgu.gov.br), ${doc}.`;
  const common = [
    `Confira ${numero} no Portal da Transparência (portaldatransparencia.gov.br) antes de concluir qualquer coisa: um alerta estatístico não é prova de irregularidade.`,
    `Se a resposta não explicar a diferença, registre uma manifestação na ouvidoria de ${orgao} ou uma denúncia à CGU (Fala.BR); contratos com recursos federais também podem ser levados ao TCU (portal.tcu.gov.br, "Denúncias").`,
  ];
  const specific: Record<AnomalyType, string> = {
    price_outlier: lai(
      `a pesquisa de preços e o termo de referência que justificaram o valor de ${numero}${first ? ` (${brl(first.valor_final)})` : ''}`,
    ),
    supplier_concentration: lai(
      `a lista de licitações e contratações diretas com ${first?.fornecedor ?? 'o fornecedor'} e as propostas dos concorrentes`,
    ),
    contract_splitting: lai(
      'o planejamento anual de contratações e os processos de dispensa destes contratos, para ver se a mesma despesa foi dividida para ficar abaixo do limite de licitação',
    ),
    value_increase: lai(
      `os termos aditivos de ${numero} e o parecer que justificou o aumento (a Lei 14.133/2021 limita acréscimos a 25% do valor inicial, 50% em reformas)`,
    ),
    temporal_spike: lai(
      'o cronograma de execução orçamentária e os processos assinados no período do pico, com as justificativas de urgência',
    ),
    direct_contracting: lai(
      `o processo de ${numero} com a justificativa da dispensa ou inexigibilidade de licitação e a pesquisa de preços`,
    ),
  };
  return [specific[type], ...common];
}

function anomalyOf(f: FindingRow) {
  const type = f.type as AnomalyType;
  const { [AFFECTED_KEY]: stored, ...evidence } = f.evidence;
  const contracts = Array.isArray(stored) ? (stored as Contract[]) : [];
  const known = new Map(contracts.map((c) => [c.id, c]));
  return {
    anomaly_id: f.findingId,
    type: FRONTEND_TYPE_OF[type] ?? type,
    severity: severityLabel(f.severity),
    confidence: round3(f.confidence),
    description: f.title.trim() || `Possível anomalia: ${TYPE_LABELS[type] ?? 'contratos'}`,
    explanation: f.explanation,
    affected_records: f.contractIds.slice(0, AFFECTED_CONTRACTS_MAX).map((id) => ({
      id,
      data: known.get(id) ?? { id },
    })),
    suggested_actions: suggestedActions(type, contracts),
    metadata: { detector: type, severity_score: round3(f.severity), evidence },
  };
}

/** InvestigationResults of a finished investigation; `anomalies_found` is `results.length`. */
export function publicResults(row: InvestigationRow, findings: readonly FindingRow[]) {
  const results = findings.map(anomalyOf);
  return {
    investigation_id: row.id,
    status: row.status,
    query: row.query,
    data_source: row.dataSource,
    started_at: iso(row.startedAt),
    completed_at: iso(row.completedAt),
    anomalies_found: results.length,
    total_records_analyzed: row.recordsProcessed,
    results,
    summary: row.summary ?? row.error ?? '',
    confidence_score: round3(row.confidence ?? 0),
    processing_time: (row.processingTimeMs ?? 0) / 1000,
    metadata: { is_demo_mode: row.sampleData, sources: sourcesOf(row) },
  };
}

/** Finished answers never change: the browser may keep them; running ones must be re-read. */
export function cacheControlFor(row: InvestigationRow): string {
  return isTerminal(row.status) ? 'private, max-age=300' : 'no-store';
}
