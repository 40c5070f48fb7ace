// Investigation tables: the durable job row, its uploaded input, its findings, and the entity graph.
import { sql } from 'drizzle-orm';
import {
  boolean,
  check,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { chatSessions } from './chat.js';
import { tstz } from './columns.js';

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({ dataType: () => 'bytea' });

export const INVESTIGATION_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export type InvestigationStatus = (typeof INVESTIGATION_STATUSES)[number];

export const investigations = pgTable(
  'investigations',
  {
    id: uuid().primaryKey(),
    userId: text(),
    // Set when a chat turn started it; the session may later be removed, the investigation stays.
    sessionId: text().references(() => chatSessions.id, { onDelete: 'set null' }),
    query: text().notNull().default(''),
    dataSource: text({ enum: ['contracts', 'upload'] }).notNull(),
    // Decided at creation (Portal when a key is configured, else the bundled sample) so every
    // instance that later runs the job reads the same source.
    sourceKind: text({ enum: ['portal', 'sample', 'upload'] }).notNull(),
    sampleData: boolean().notNull().default(false),
    filters: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    anomalyTypes: text().array().notNull(),
    status: text({ enum: INVESTIGATION_STATUSES }).notNull().default('pending'),
    currentPhase: text().notNull().default('queued'),
    progress: real().notNull().default(0),
    // Bumped on every progress write: the SSE cursor's progress component.
    progressSeq: integer().notNull().default(0),
    recordsExpected: integer(),
    recordsProcessed: integer().notNull().default(0),
    anomaliesDetected: integer().notNull().default(0),
    confidence: real(),
    summary: text(),
    error: text(),
    // The queue's job id, and how many times a runner started this investigation (1 unless a
    // restart or a retry handed it to another run).
    jobId: uuid(),
    runCount: integer().notNull().default(0),
    instanceId: text(),
    startedAt: tstz(),
    completedAt: tstz(),
    processingTimeMs: integer(),
    createdAt: tstz().notNull().defaultNow(),
    updatedAt: tstz().notNull().defaultNow(),
  },
  (t) => [
    check('investigations_progress_range', sql`${t.progress} >= 0 and ${t.progress} <= 1`),
    index('investigations_user_created_idx')
      .on(t.userId, t.createdAt.desc(), t.id.desc())
      .where(sql`${t.userId} is not null`),
  ],
);

/** An upload's contracts, in chunks, so a job can run later on any instance and read them page by page. */
export const investigationInputs = pgTable(
  'investigation_inputs',
  {
    investigationId: uuid()
      .notNull()
      .references(() => investigations.id, { onDelete: 'cascade' }),
    chunk: integer().notNull(),
    // Contract[] as zlib-deflated JSON: 100,000 contracts are ~35 MB of JSON but a few MB here,
    // which is what makes an upload that size quick to store and read back (most of all on PGlite).
    contracts: bytea().notNull(),
  },
  (t) => [primaryKey({ columns: [t.investigationId, t.chunk] })],
);

export const investigationFindings = pgTable(
  'investigation_findings',
  {
    investigationId: uuid()
      .notNull()
      .references(() => investigations.id, { onDelete: 'cascade' }),
    // Order of discovery within the current run; the SSE cursor's finding component.
    seq: integer().notNull(),
    findingId: text().notNull(),
    type: text().notNull(),
    severity: real().notNull(),
    confidence: real().notNull(),
    title: text().notNull(),
    explanation: text().notNull(),
    contractIds: text().array().notNull(),
    evidence: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    createdAt: tstz().notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.investigationId, t.seq] }),
    uniqueIndex('investigation_findings_finding_idx').on(t.investigationId, t.findingId),
  ],
);

// Graph keys (CNPJs, agency codes) compare bytewise: a linguistic collation makes the bulk upsert
// of tens of thousands of edges several times slower and buys nothing for digits.
const key = customType<{ data: string }>({ dataType: () => 'text collate "C"' });

export const entityNodes = pgTable(
  'entity_nodes',
  {
    id: uuid().primaryKey().defaultRandom(),
    kind: text({ enum: ['supplier', 'agency'] }).notNull(),
    // The CNPJ for a supplier, the agency code for an agency.
    key: key().notNull(),
    name: text().notNull(),
    totalValue: doublePrecision().notNull().default(0),
    contractCount: integer().notNull().default(0),
    riskScore: real().notNull().default(0),
    lastInvestigationId: uuid().references(() => investigations.id, { onDelete: 'set null' }),
    createdAt: tstz().notNull().defaultNow(),
    updatedAt: tstz().notNull().defaultNow(),
  },
  (t) => [uniqueIndex('entity_nodes_kind_key_idx').on(t.kind, t.key)],
);

/**
 * Agency–supplier edges, keyed by the nodes' natural keys. No foreign keys here: one run can
 * upsert ~100,000 edges, and a per-row constraint trigger would triple that write; the edges are
 * derived data, rewritten by every run that sees the pair.
 */
export const entityRelationships = pgTable(
  'entity_relationships',
  {
    agencyKey: key().notNull(),
    supplierKey: key().notNull(),
    contractCount: integer().notNull().default(0),
    totalValue: doublePrecision().notNull().default(0),
    lastInvestigationId: uuid(),
    createdAt: tstz().notNull().defaultNow(),
    updatedAt: tstz().notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.agencyKey, t.supplierKey] }),
    index('entity_relationships_supplier_idx').on(t.supplierKey),
  ],
);
