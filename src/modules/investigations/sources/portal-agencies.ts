// Agency name → SIAFI code through the Portal's /orgaos-siafi listing, cached for the process.
import { normalizeText } from '../detectors/text.js';
import { PortalError } from './portal-error.js';
import type { ContractFilters } from './source.js';

const TTL_MS = 24 * 3600_000;
const MAX_ENTRIES = 500;
// Shared by every Portal source of the process: agency codes change once in years.
const cache = new Map<string, { code: string | null; at: number }>();

export interface AgencyDirectoryDeps {
  base: string;
  apiKey: string;
  fetchPage(url: string, signal: AbortSignal): Promise<unknown[]>;
}

const words = (s: string) =>
  normalizeText(s)
    .split(' ')
    .filter((w) => w.length > 2);

/** The best listing entry for a name: the same name, else the first that holds every word of it. */
function pick(name: string, rows: unknown[]): string | null {
  const want = normalizeText(name);
  const need = words(name);
  const entries = rows
    .map((r) => r as { codigo?: unknown; descricao?: unknown })
    .filter((r) => r.codigo !== undefined && typeof r.descricao === 'string')
    .map((r) => ({ code: String(r.codigo), name: normalizeText(r.descricao as string) }));
  const exact = entries.find((e) => e.name === want);
  if (exact) return exact.code;
  const all = entries.find((e) => need.every((w) => e.name.split(' ').includes(w)));
  return all?.code ?? null;
}

export function createAgencyDirectory(deps: AgencyDirectoryDeps) {
  async function lookup(name: string, signal: AbortSignal): Promise<string | null> {
    const key = `${deps.base} ${normalizeText(name)}`;
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.code;
    const params = new URLSearchParams({ descricao: name, pagina: '1' });
    const rows = await deps.fetchPage(`${deps.base}/orgaos-siafi?${params}`, signal);
    const code = pick(name, rows);
    if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(key, { code, at: Date.now() });
    return code;
  }

  return {
    /** The codigoOrgao for the filters: given, known, or looked up by name; a PortalError otherwise. */
    async codeFor(filters: ContractFilters, signal: AbortSignal): Promise<string> {
      if (filters.orgao_codigo) return filters.orgao_codigo;
      const agency = filters.orgao;
      if (agency?.codigo) return agency.codigo;
      const name = agency?.nome ?? agency?.mencao;
      if (!name) {
        throw new PortalError(
          'O Portal da Transparência só lista contratos por órgão: diga qual (ex.: "contratos do Ministério da Saúde").',
          'PORTAL_NEEDS_AGENCY',
        );
      }
      const code = await lookup(name, signal);
      if (!code) {
        throw new PortalError(
          `O Portal da Transparência não lista um órgão chamado "${name}".`,
          'PORTAL_AGENCY_NOT_FOUND',
        );
      }
      return code;
    },
  };
}
