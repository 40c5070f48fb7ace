// The entity graph: suppliers and agencies with totals and a risk score, and who contracts whom.
import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import type { Contract, Finding } from './types.js';

interface NodeTotals {
  name: string;
  total: number;
  count: number;
  /** Product of (1 - severity × confidence) over the findings naming it. */
  clean: number;
}

export interface EntityAggregator {
  /** Feeds a page; a contract id seen before is ignored, as the detectors do. */
  add(batch: readonly Contract[]): void;
  /** Raises the risk of the agencies and suppliers behind each finding's contracts. */
  addFindings(findings: readonly Finding[]): void;
  readonly size: { suppliers: number; agencies: number; relationships: number };
  /** Batched upserts; a node or edge describes the entity as the latest investigation saw it. */
  upsert(db: Pick<Db, 'execute'>, investigationId: string): Promise<void>;
}

const PAIR_SEP = '\u0000';

export function createEntityAggregator(): EntityAggregator {
  const suppliers = new Map<string, NodeTotals>();
  const agencies = new Map<string, NodeTotals>();
  const pairs = new Map<string, { total: number; count: number }>();
  // contract id → [agency key, supplier key]: what a finding's contract ids point at.
  const owners = new Map<string, [string, string]>();

  const bump = (map: Map<string, NodeTotals>, key: string, name: string, value: number) => {
    const n = map.get(key);
    if (n) {
      n.total += value;
      n.count++;
    } else {
      map.set(key, { name, total: value, count: 1, clean: 1 });
    }
  };

  return {
    add(batch) {
      for (const c of batch) {
        if (owners.has(c.id)) continue;
        owners.set(c.id, [c.orgao_codigo, c.cnpj_fornecedor]);
        const value = c.valor_final;
        bump(agencies, c.orgao_codigo, c.orgao, value);
        bump(suppliers, c.cnpj_fornecedor, c.fornecedor, value);
        const key = `${c.orgao_codigo}${PAIR_SEP}${c.cnpj_fornecedor}`;
        const p = pairs.get(key);
        if (p) {
          p.total += value;
          p.count++;
        } else {
          pairs.set(key, { total: value, count: 1 });
        }
      }
    },

    addFindings(findings) {
      for (const f of findings) {
        const weight = Math.min(1, Math.max(0, f.severity * f.confidence));
        // An entity named by several contracts of one finding counts that finding once.
        const hitAgencies = new Set<string>();
        const hitSuppliers = new Set<string>();
        for (const id of f.contract_ids) {
          const o = owners.get(id);
          if (!o) continue;
          hitAgencies.add(o[0]);
          hitSuppliers.add(o[1]);
        }
        for (const k of hitAgencies) {
          const n = agencies.get(k);
          if (n) n.clean *= 1 - weight;
        }
        for (const k of hitSuppliers) {
          const n = suppliers.get(k);
          if (n) n.clean *= 1 - weight;
        }
      }
    },

    get size() {
      return { suppliers: suppliers.size, agencies: agencies.size, relationships: pairs.size };
    },

    async upsert(db, investigationId) {
      if (owners.size === 0) return;
      const nodes = [
        ...[...agencies].map(([key, n]) => ({ kind: 'agency', key, ...nodeFields(n) })),
        ...[...suppliers].map(([key, n]) => ({ kind: 'supplier', key, ...nodeFields(n) })),
      ];
      const rels = [...pairs].map(([key, p]) => {
        const [agency, supplier] = key.split(PAIR_SEP);
        return { agency, supplier, contract_count: p.count, total_value: round2(p.total) };
      });
      // One JSON parameter per statement, in batches that each commit on their own, yielding to the
      // event loop between them: on PGlite (one session, run on this thread) requests get through
      // between batches. Rows go in key order, so two runs upserting the same entities cannot deadlock.
      for (let i = 0; i < nodes.length; i += GRAPH_BATCH) {
        await yieldToIo();
        await db.execute(sql`
          insert into entity_nodes (kind, key, name, total_value, contract_count, risk_score, last_investigation_id)
          select x.kind, x.key, x.name, x.total_value, x.contract_count, x.risk_score, ${investigationId}::uuid
          from jsonb_to_recordset(${JSON.stringify(nodes.slice(i, i + GRAPH_BATCH))}::jsonb)
            as x(kind text, key text, name text, total_value float8, contract_count int, risk_score real)
          order by 1, 2
          on conflict (kind, key) do update set
            name = excluded.name,
            total_value = excluded.total_value,
            contract_count = excluded.contract_count,
            risk_score = excluded.risk_score,
            last_investigation_id = excluded.last_investigation_id,
            updated_at = now()`);
      }
      for (let i = 0; i < rels.length; i += GRAPH_BATCH) {
        await yieldToIo();
        await db.execute(sql`
          insert into entity_relationships (agency_key, supplier_key, contract_count, total_value, last_investigation_id)
          select x.agency, x.supplier, x.contract_count, x.total_value, ${investigationId}::uuid
          from jsonb_to_recordset(${JSON.stringify(rels.slice(i, i + GRAPH_BATCH))}::jsonb)
            as x(agency text, supplier text, contract_count int, total_value float8)
          order by 1, 2
          on conflict (agency_key, supplier_key) do update set
            contract_count = excluded.contract_count,
            total_value = excluded.total_value,
            last_investigation_id = excluded.last_investigation_id,
            updated_at = now()`);
      }
    },
  };
}

const GRAPH_BATCH = 5000;
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));
const round2 = (x: number) => Math.round(x * 100) / 100;

function nodeFields(n: NodeTotals) {
  return {
    name: n.name,
    total_value: round2(n.total),
    contract_count: n.count,
    risk_score: Math.round((1 - n.clean) * 1000) / 1000,
  };
}
