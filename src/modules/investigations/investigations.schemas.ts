// Investigation wire shapes: request schemas (zod) and the JSON answers of API.md §6.
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { storedJson, storedText } from '../../lib/text.js';
import { isCsvUpload } from './csv-upload.js';
import { AFFECTED_KEY } from './investigations.public.js';
import type { FindingRow, InvestigationRow } from './investigations.repo.js';
import { assertSupportedSource } from './selection.js';
import {
  ANOMALY_TYPES,
  type AnomalyType,
  type Contract,
  contractSchema,
  type Finding,
  isIsoDate,
} from './types.js';
import {
  FRONTEND_ANOMALY_TYPES,
  type FrontendAnomalyType,
  nativeFilters,
  type SUPPORTED_DATA_SOURCES,
} from './vocabulary.js';

const isoDate = z.string().refine(isIsoDate, { message: 'expected a date as YYYY-MM-DD' });
// Every string a request stores follows the one stored-text rule (lib/text.ts): no NUL, no lone surrogate.
const text = (max: number) => storedText(z.string().trim().max(max));

/** Native filter names, and the frontend's (`organization`, `start_date`, `end_date`) mapped onto them. */
export const filtersSchema = storedJson(
  z
    .object({
      query: text(500).optional(),
      orgao_codigo: storedText(z.string().trim().min(1).max(64)).optional(),
      cnpj_fornecedor: storedText(z.string().trim().min(1).max(32)).optional(),
      data_inicio: isoDate.optional(),
      data_fim: isoDate.optional(),
      modalidade: storedText(z.string().trim().min(1).max(200)).optional(),
      max_records: z.number().int().min(1).optional(),
      organization: text(500).optional(),
      start_date: isoDate.optional(),
      end_date: isoDate.optional(),
    })
    .transform(nativeFilters),
);
export type Filters = z.infer<typeof filtersSchema>;

const ANY_ANOMALY_TYPE = [
  ...ANOMALY_TYPES,
  ...(Object.keys(FRONTEND_ANOMALY_TYPES) as FrontendAnomalyType[]),
] as const;

/** Native detector names and the frontend's (`price`, `vendor`, …), as native names, deduplicated. */
const anomalyTypesSchema = z
  .array(z.enum(ANY_ANOMALY_TYPE))
  .min(1)
  .transform((types) => [
    ...new Set(
      types.map(
        (t): AnomalyType =>
          t in FRONTEND_ANOMALY_TYPES ? FRONTEND_ANOMALY_TYPES[t as FrontendAnomalyType] : (t as AnomalyType),
      ),
    ),
  ]);

/** `contracts` or `upload`; the frontend's other sources have no data yet: a 422 says what does. */
const dataSourceSchema = z.string().transform((v) => {
  // One message for every route that takes a data_source (selection.ts says what is served today).
  assertSupportedSource(v);
  return v as (typeof SUPPORTED_DATA_SOURCES)[number];
});

/**
 * The JSON body. A `text/csv` upload arrives here as `{ csv }` (see the routes' content-type
 * parser), with its options in the querystring. The frontend's `include_explanations` and
 * `stream_results` are accepted and change nothing: explanations are always there, and the
 * stream is its own route.
 */
export function createBodySchema(maxContracts: number) {
  return z.object({
    query: text(2000).optional(),
    data_source: dataSourceSchema.optional(),
    filters: filtersSchema.default({}),
    anomaly_types: anomalyTypesSchema.optional(),
    // Items are checked one by one in the service, so a bad upload reports a few readable errors.
    contracts: storedJson(
      z.array(z.unknown()).max(maxContracts, { message: `at most ${maxContracts} contracts` }),
    ).optional(),
    // Parsed, decoded and checked by the routes' text/csv parser (csv-upload.ts).
    csv: z.custom<import('./csv-upload.js').CsvUpload>(isCsvUpload).optional(),
    include_explanations: z.boolean().optional(),
    stream_results: z.boolean().optional(),
  });
}
export type CreateBody = z.infer<ReturnType<typeof createBodySchema>>;

export const createQuerySchema = z.object({
  query: text(2000).optional(),
  // Comma-separated on the querystring: ?anomaly_types=price_outlier,value_increase
  anomaly_types: z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()))
    .pipe(anomalyTypesSchema)
    .optional(),
});

// Not a UUID type here: an id that cannot exist is a 404, like any unknown id.
export const idParamsSchema = z.object({ id: z.string().min(1).max(128) });

export const listQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) });

export const streamQuerySchema = z.object({ after: z.string().max(64).optional() });

/** The stream route answers text/event-stream (documented, never serialized: the reply is hijacked). */
export const eventStreamSchema = z.string().describe('text/event-stream');

// Response shapes: the serializer checks every answer against them, and they feed the OpenAPI document.
// Loose objects: a field added to statusBody/resultsBody reaches clients even before it is listed here.
const statusEnum = z.enum(['pending', 'running', 'completed', 'failed', 'cancelled']);
const isoOrNull = z.string().nullable();
const ratio = z.number().min(0).max(1);

export const createdResponseSchema = z.looseObject({
  investigation_id: z.string(),
  status: z.literal('pending'),
  sample_data: z.boolean().describe('true when the bundled sample (not real Portal data) is analysed'),
});

export const statusResponseSchema = z.looseObject({
  investigation_id: z.string(),
  status: statusEnum,
  query: z.string(),
  data_source: z.enum(['contracts', 'upload']),
  sample_data: z.boolean(),
  anomaly_types: z.array(z.enum(ANOMALY_TYPES)),
  filters: z.record(z.string(), z.unknown()),
  progress: ratio.describe('0..1, never decreasing'),
  current_phase: z.string(),
  records_processed: z.number().int(),
  anomalies_detected: z.number().int(),
  confidence: ratio.nullable(),
  summary: z.string().nullable(),
  error: z.string().nullable(),
  session_id: z.string().nullable(),
  created_at: isoOrNull,
  started_at: isoOrNull,
  completed_at: isoOrNull,
  updated_at: isoOrNull,
  processing_time_ms: z.number().int().nullable(),
});

export const findingSchema = z.object({
  id: z.string(),
  type: z.enum(ANOMALY_TYPES),
  severity: ratio,
  confidence: ratio,
  title: z.string(),
  explanation: z.string(),
  contract_ids: z.array(z.string()),
  evidence: z.record(z.string(), z.unknown()),
});

export const resultsResponseSchema = z.looseObject({
  investigation_id: z.string(),
  status: statusEnum,
  query: z.string(),
  data_source: z.enum(['contracts', 'upload']),
  sample_data: z.boolean(),
  records_analyzed: z.number().int(),
  anomalies_found: z.number().int(),
  findings: z.array(findingSchema),
  summary: z.string().nullable(),
  confidence: ratio.nullable(),
  error: z.string().nullable(),
  started_at: isoOrNull,
  completed_at: isoOrNull,
  processing_time_ms: z.number().int().nullable(),
});

// The frontend's shapes (API.md §6.1, investigations.public.ts).
// A contract as uploaded (or only its id when it was not kept), passed through as it is.
const affectedRecordSchema = z.custom<Contract | { id: string }>(
  (v) => typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string',
);

export const publicCreatedResponseSchema = z.looseObject({
  investigation_id: z.string(),
  status: z.literal('pending'),
  message: z.string(),
  sample_data: z.boolean(),
});

export const publicStatusResponseSchema = z.looseObject({
  investigation_id: z.string(),
  title: z.string(),
  status: statusEnum,
  progress: ratio,
  current_phase: z.string(),
  records_processed: z.number().int(),
  anomalies_detected: z.number().int(),
  estimated_completion: isoOrNull,
  created_at: isoOrNull,
  started_at: isoOrNull,
  completed_at: isoOrNull,
});

export const publicResultsResponseSchema = z.looseObject({
  investigation_id: z.string(),
  status: statusEnum,
  query: z.string(),
  data_source: z.enum(['contracts', 'upload']),
  started_at: isoOrNull,
  completed_at: isoOrNull,
  anomalies_found: z.number().int(),
  total_records_analyzed: z.number().int(),
  results: z.array(
    z.looseObject({
      anomaly_id: z.string(),
      type: z.string(),
      severity: z.enum(['high', 'medium', 'low']),
      confidence: ratio,
      description: z.string(),
      explanation: z.string(),
      affected_records: z.array(z.object({ id: z.string(), data: affectedRecordSchema })),
      suggested_actions: z.array(z.string()),
      metadata: z.record(z.string(), z.unknown()),
    }),
  ),
  summary: z.string(),
  confidence_score: ratio,
  processing_time: z.number(),
  metadata: z.looseObject({ is_demo_mode: z.boolean(), sources: z.array(z.string()) }),
});

const MAX_REPORTED_ERRORS = 20;

/** Validates uploaded items; a 422 names the first few bad ones and nothing is stored. */
export function validateContracts(items: unknown[]): Contract[] {
  const contracts: Contract[] = [];
  const errors: Array<{ index: number; path: string; message: string }> = [];
  items.forEach((item, index) => {
    const r = contractSchema.safeParse(item);
    if (r.success) contracts.push(r.data);
    else if (errors.length < MAX_REPORTED_ERRORS) {
      const issue = r.error.issues[0]!;
      errors.push({ index, path: issue.path.join('.'), message: issue.message });
    }
  });
  if (contracts.length < items.length) {
    throw new AppError(
      'VALIDATION_ERROR',
      `${items.length - contracts.length} of ${items.length} contracts are invalid`,
      errors,
    );
  }
  return contracts;
}

/** Where the contracts come from, and the validated upload if there is one (else a 422). */
export function readUpload(body: CreateBody, maxContracts: number) {
  const sent = body.contracts !== undefined || body.csv !== undefined;
  // Planned datasets were refused before this (selection.ts); what is left is contracts or an upload.
  const dataSource: 'contracts' | 'upload' =
    body.data_source === 'upload' || (!body.data_source && sent) ? 'upload' : 'contracts';
  if (dataSource === 'contracts' && sent) {
    throw new AppError('VALIDATION_ERROR', 'contracts were sent with data_source "contracts"', [
      { path: 'data_source', message: 'use "upload" to investigate the contracts you send' },
    ]);
  }
  if (dataSource === 'contracts') return { dataSource, contracts: null };
  if (body.csv !== undefined && body.csv.contracts.length > maxContracts) {
    throw new AppError('VALIDATION_ERROR', `at most ${maxContracts} contracts`, [
      { path: 'contracts', message: `the CSV holds ${body.csv.contracts.length} contracts` },
    ]);
  }
  const contracts = body.csv !== undefined ? body.csv.contracts : validateContracts(body.contracts ?? []);
  if (contracts.length === 0) {
    throw new AppError('VALIDATION_ERROR', 'an upload needs at least one contract', [
      { path: 'contracts', message: 'send `contracts` (JSON) or a text/csv body' },
    ]);
  }
  return { dataSource, contracts };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Status of one investigation (also the items of the list). */
export function statusBody(row: InvestigationRow) {
  return {
    investigation_id: row.id,
    status: row.status,
    query: row.query,
    data_source: row.dataSource,
    sample_data: row.sampleData,
    anomaly_types: row.anomalyTypes as AnomalyType[],
    filters: row.filters,
    progress: round3(row.progress),
    current_phase: row.currentPhase,
    records_processed: row.recordsProcessed,
    anomalies_detected: row.anomaliesDetected,
    confidence: row.confidence === null ? null : round3(row.confidence),
    summary: row.summary,
    error: row.error,
    session_id: row.sessionId,
    created_at: iso(row.createdAt),
    started_at: iso(row.startedAt),
    completed_at: iso(row.completedAt),
    updated_at: iso(row.updatedAt),
    processing_time_ms: row.processingTimeMs,
  };
}

function withoutAffected(evidence: Record<string, unknown>): Record<string, unknown> {
  if (!(AFFECTED_KEY in evidence)) return evidence;
  const { [AFFECTED_KEY]: _, ...rest } = evidence;
  return rest;
}

export function findingBody(f: FindingRow): Finding {
  return {
    id: f.findingId,
    type: f.type as AnomalyType,
    severity: round3(f.severity),
    confidence: round3(f.confidence),
    title: f.title,
    explanation: f.explanation,
    contract_ids: f.contractIds,
    // The affected contracts' data is for the frontend's results page (investigations.public.ts).
    evidence: withoutAffected(f.evidence),
  };
}

export function resultsBody(row: InvestigationRow, findings: FindingRow[]) {
  return {
    investigation_id: row.id,
    status: row.status,
    query: row.query,
    data_source: row.dataSource,
    sample_data: row.sampleData,
    records_analyzed: row.recordsProcessed,
    anomalies_found: findings.length,
    findings: findings.map(findingBody),
    summary: row.summary,
    confidence: row.confidence === null ? null : round3(row.confidence),
    error: row.error,
    started_at: iso(row.startedAt),
    completed_at: iso(row.completedAt),
    processing_time_ms: row.processingTimeMs,
  };
}

const TYPE_LABELS: Record<AnomalyType, string> = {
  price_outlier: 'preço fora do padrão',
  supplier_concentration: 'concentração de fornecedor',
  contract_splitting: 'possível fracionamento de despesa',
  value_increase: 'aumento de valor acima do limite legal',
  temporal_spike: 'pico de contratações',
  direct_contracting: 'contratação direta',
};

const fmt = (n: number) => n.toLocaleString('pt-BR');

/** The plain-Portuguese summary stored with a completed investigation. */
export function summarize(records: number, findings: readonly Finding[], sample: boolean): string {
  const source = sample ? ' (dados de exemplo, não são dados reais do Portal da Transparência)' : '';
  if (findings.length === 0) {
    return `Nenhuma anomalia encontrada em ${fmt(records)} contratos analisados${source}.`;
  }
  const counts = new Map<AnomalyType, number>();
  for (const f of findings) counts.set(f.type, (counts.get(f.type) ?? 0) + 1);
  const parts = [...counts].map(([type, n]) => `${fmt(n)} de ${TYPE_LABELS[type]}`);
  const noun = findings.length === 1 ? 'anomalia encontrada' : 'anomalias encontradas';
  return `${fmt(findings.length)} ${noun} em ${fmt(records)} contratos analisados${source}: ${parts.join('; ')}.`;
}
