// Which contracts an investigation analyses: its query and filters understood together, checked against its source.
import { AppError } from '../../errors.js';
import { agencyOf, describeSelection, resolveFilters, type SelectionFilters } from '../query/select.js';
import { SUPPORTED_DATA_SOURCES } from './vocabulary.js';

export { SUPPORTED_DATA_SOURCES };

/** Datasets the frontend names (API.md §6.1) that have no source yet. */
export const PLANNED_DATA_SOURCES = ['expenses', 'agreements', 'biddings', 'servants'] as const;

/** 422 for a dataset that is named but not served yet, saying what is. */
export function assertSupportedSource(dataSource: string | undefined): void {
  if (dataSource === undefined || (SUPPORTED_DATA_SOURCES as readonly string[]).includes(dataSource)) return;
  throw new AppError(
    'VALIDATION_ERROR',
    `data_source "${dataSource}" is not supported yet; supported today: ${SUPPORTED_DATA_SOURCES.join(', ')} (contracts from the Portal da Transparência or the bundled sample, or your own upload).`,
    [{ path: 'data_source', message: `supported: ${SUPPORTED_DATA_SOURCES.join(', ')}` }],
  );
}

/** The stored filters of a new investigation and the sentence that says what they select. */
export function createdSelection(
  // Structural, not the body schema's type: the schemas use this module (no import cycle).
  input: { query?: string; filters: SelectionFilters & { max_records?: number }; data_source?: string },
  sourceKind: 'portal' | 'sample' | 'upload',
  maxContracts: number,
): { filters: SelectionFilters; description: string } {
  assertSupportedSource(input.data_source);
  const resolved = resolveFilters(input.query, input.filters);
  const filters = {
    ...resolved,
    max_records: Math.min(input.filters.max_records ?? maxContracts, maxContracts),
  };
  // The Portal lists contracts one agency at a time: without one there is nothing it can be asked.
  if (sourceKind === 'portal' && !agencyOf(filters)) {
    throw new AppError(
      'VALIDATION_ERROR',
      'O Portal da Transparência só lista contratos por órgão: diga qual (ex.: "contratos do Ministério da Saúde") ou envie filters.orgao_codigo.',
      [{ path: 'query', message: 'name an agency (name, acronym or SIAFI code)' }],
    );
  }
  return { filters, description: describeSelection(filters) };
}

const fmt = (n: number) => n.toLocaleString('pt-BR');

/** The stored summary, led by what was selected and how many: "Seleção: contratos do órgão X (250 contratos). …" */
export function selectionSummary(filters: SelectionFilters, records: number, summary: string): string {
  const noun = records === 1 ? 'contrato' : 'contratos';
  return `Seleção: ${describeSelection(filters)} (${fmt(records)} ${noun}). ${summary}`;
}
