// The Portal da Transparência contracts client: paging, rate-limit backoff, timeouts, field mapping.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { type Contract, contractSchema } from '../types.js';
import { contractMatcher } from './match.js';
import { createAgencyDirectory } from './portal-agencies.js';
import { PortalError } from './portal-error.js';
import type { ContractFilters, ContractSource } from './source.js';

import { parseBrDate, parseDecimal } from './values.js';

export interface PortalSourceOptions {
  /** e.g. https://api.portaldatransparencia.gov.br/api-de-dados */
  baseUrl: string;
  apiKey: string;
  /** Records per Portal page (the Portal serves 15); a shorter page is the last one. */
  pageSize?: number;
  /** Per request, body included. Default 15 s. */
  timeoutMs?: number;
  /** Retries per page after a 429, a 5xx, a timeout or a network error. Default 5. */
  maxRetries?: number;
  log: Pick<Logger, 'warn' | 'debug'>;
  /** Waits between retries; ends early (resolving) when the signal aborts. Default: a real timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** "Today", for the default date window. Default: the system clock. */
  now?: () => Date;
  /** Days of the window asked for when the filters give no dates (the Portal requires one). Default 365. */
  defaultWindowDays?: number;
}

const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
// The Portal's limits are per minute (90/min by day, 300/min at night); no sane Retry-After is longer.
const RETRY_AFTER_MAX_MS = 120_000;
// A server that ignores `pagina` would otherwise be paged forever.
const MAX_PAGES = 100_000;

/** Retry-After as seconds or an HTTP date, in ms; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (!header) return null;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, RETRY_AFTER_MAX_MS);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.min(Math.max(0, at - now), RETRY_AFTER_MAX_MS);
}

const isoToBr = (iso: string) => `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`;
// The Portal answers wide date windows slowly or not at all: ask a year at a time.
const WINDOW_MAX_DAYS = 366;
const DAY_MS = 86_400_000;

const realSleep = (ms: number, signal: AbortSignal) =>
  delay(ms, undefined, { signal }).then(
    () => {},
    () => {},
  );

/** [from, to] windows of at most WINDOW_MAX_DAYS covering from..to (YYYY-MM-DD, inclusive). */
export function dateWindows(from: string, to: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`);
  while (start <= end) {
    const stop = Math.min(end, start + (WINDOW_MAX_DAYS - 1) * DAY_MS);
    out.push([new Date(start).toISOString().slice(0, 10), new Date(stop).toISOString().slice(0, 10)]);
    start = stop + DAY_MS;
  }
  return out;
}

export function createPortalSource(opts: PortalSourceOptions): ContractSource {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const pageSize = opts.pageSize ?? 15;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const maxRetries = opts.maxRetries ?? 5;
  const log = opts.log;

  const sleep = opts.sleep ?? realSleep;
  const now = opts.now ?? (() => new Date());
  const windowDays = opts.defaultWindowDays ?? 365;
  const agencies = createAgencyDirectory({
    base,
    apiKey: opts.apiKey,
    fetchPage: (url, signal) => fetchPage(url, signal),
  });

  async function wait(ms: number, signal: AbortSignal) {
    await sleep(ms, signal);
    // Every source ends an aborted read the same way: by throwing the signal's reason.
    signal.throwIfAborted();
  }

  async function fetchPage(url: string, signal: AbortSignal): Promise<unknown[]> {
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      const timeout = AbortSignal.timeout(timeoutMs);
      let failure: PortalError;
      let waitMs = Math.min(BACKOFF_BASE_MS * 2 ** attempt, BACKOFF_MAX_MS);
      try {
        const res = await fetch(url, {
          headers: { 'chave-api-dados': opts.apiKey, accept: 'application/json' },
          signal: AbortSignal.any([signal, timeout]),
        });
        if (res.ok) {
          const body: unknown = await res.json().catch((err: unknown) => {
            if (signal.aborted || timeout.aborted) throw err;
            throw new PortalError(
              'the Portal answered with something that is not JSON',
              'PORTAL_BAD_RESPONSE',
            );
          });
          if (!Array.isArray(body)) {
            throw new PortalError('the Portal answered with JSON that is not a list', 'PORTAL_BAD_RESPONSE');
          }
          return body;
        }
        let said = '';
        if (res.status < 500) said = await portalMessage(res);
        else await res.body?.cancel().catch(() => {});
        if (res.status === 429) {
          failure = new PortalError('the Portal rate limit was exceeded', 'PORTAL_RATE_LIMITED', 429);
        } else if (res.status >= 500) {
          failure = new PortalError(`the Portal answered ${res.status}`, 'PORTAL_HTTP_ERROR', res.status);
        } else {
          // 400 (bad parameters), 401/403 (bad key): retrying cannot help.
          throw new PortalError(
            `the Portal answered ${res.status}${said ? `: ${said}` : ''}`,
            'PORTAL_HTTP_ERROR',
            res.status,
          );
        }
        waitMs = retryAfterMs(res.headers.get('retry-after')) ?? waitMs;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (err instanceof PortalError) throw err;
        failure = timeout.aborted
          ? new PortalError(`the Portal did not answer within ${timeoutMs} ms`, 'PORTAL_TIMEOUT')
          : new PortalError(`the Portal could not be reached: ${(err as Error).message}`, 'PORTAL_NETWORK');
      }
      if (attempt >= maxRetries) throw failure;
      log.warn(
        { code: failure.code, status: failure.status, attempt: attempt + 1, waitMs },
        'portal request failed; retrying',
      );
      await wait(waitMs, signal);
    }
  }

  return {
    kind: 'portal',
    sample: false,
    describe: `Portal da Transparência at ${base}`,
    async *pages(filters: ContractFilters, signal: AbortSignal) {
      // /contratos requires an agency (codigoOrgao) and a date window (dataInicial/dataFinal).
      const codigoOrgao = await agencies.codeFor(filters, signal);
      const to = filters.data_fim ?? now().toISOString().slice(0, 10);
      const from =
        filters.data_inicio ??
        new Date(Date.parse(`${to}T00:00:00Z`) - windowDays * DAY_MS).toISOString().slice(0, 10);
      // The Portal applies the agency and the dates itself; the rest is applied to each page here.
      const match = contractMatcher({ ...filters, orgao_codigo: undefined, orgao: undefined });
      const max = filters.max_records ?? Number.POSITIVE_INFINITY;
      const seen = new Set<string>();
      let emitted = 0;
      for (const [windowFrom, windowTo] of dateWindows(from, to)) {
        const params = new URLSearchParams({
          codigoOrgao,
          dataInicial: isoToBr(windowFrom),
          dataFinal: isoToBr(windowTo),
        });
        for (let pagina = 1; pagina <= MAX_PAGES && emitted < max; pagina++) {
          params.set('pagina', String(pagina));
          const raw = await fetchPage(`${base}/contratos?${params}`, signal);
          if (raw.length === 0) break;
          const page: Contract[] = [];
          let skipped = 0;
          let repeated = 0;
          for (const item of raw) {
            const c = mapPortalContract(item);
            if (!c) skipped++;
            else if (seen.has(c.id)) repeated++;
            else {
              seen.add(c.id);
              if (match(c) && emitted + page.length < max) page.push(c);
            }
          }
          log.debug({ pagina, records: raw.length, kept: page.length, skipped }, 'portal page');
          if (skipped > 0)
            log.warn({ pagina, skipped }, 'portal records without the fields a contract needs were skipped');
          emitted += page.length;
          signal.throwIfAborted();
          if (page.length > 0) yield page;
          // A page of nothing but ids already seen means the server is not paging: stop, do not loop.
          if (raw.length < pageSize || repeated === raw.length) break;
        }
        if (emitted >= max) return;
      }
    },
  };
}

/** The Portal's own words on a refused request (its 400s say which parameter is missing), short. */
async function portalMessage(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  let said = text;
  try {
    const body = JSON.parse(text) as unknown;
    said =
      typeof body === 'string'
        ? body
        : Object.values(obj(body))
            .filter((v) => typeof v === 'string')
            .join('; ') || text;
  } catch {}
  return said.replace(/\s+/g, ' ').trim().slice(0, 300);
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const str = (...vs: unknown[]): string | undefined => {
  for (const v of vs) {
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  return undefined;
};
const money = (v: unknown): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'string' ? parseDecimal(v) : undefined;

/** One record of the Portal's `/contratos` answer as our Contract; null when it lacks what a contract needs. */
export function mapPortalContract(raw: unknown): Contract | null {
  const r = obj(raw);
  const ug = obj(r.unidadeGestora);
  const vinculado = obj(ug.orgaoVinculado);
  const maximo = obj(ug.orgaoMaximo);
  const fornecedor = obj(r.fornecedor);
  const modalidade = r.modalidadeCompra;
  const valorInicial = money(r.valorInicialCompra);
  const dateText = str(r.dataAssinatura, r.dataInicioVigencia, r.dataPublicacaoDOU);
  const parsed = contractSchema.safeParse({
    id: str(r.id),
    numero: str(r.numero) ?? null,
    // The Portal repeats the label inside the text: "Objeto: Aquisição de …".
    objeto: str(r.objeto, obj(r.compra).objeto)?.replace(/^objeto\s*:\s*/i, '') || 'Objeto não informado',
    orgao: str(vinculado.nome, maximo.nome, ug.nome),
    orgao_codigo: str(vinculado.codigoSIAFI, maximo.codigo, ug.codigo),
    fornecedor: str(fornecedor.nome, fornecedor.razaoSocialReceita, fornecedor.nomeFantasiaReceita),
    cnpj_fornecedor: str(fornecedor.cnpjFormatado, fornecedor.cpfFormatado, fornecedor.numeroInscricaoSocial),
    valor_inicial: valorInicial,
    valor_final: money(r.valorFinalCompra) ?? valorInicial,
    data_assinatura: dateText ? parseBrDate(dateText) : undefined,
    modalidade: str(modalidade, obj(modalidade).descricao) ?? 'Não informada',
    situacao: str(r.situacaoContrato) ?? null,
  });
  return parsed.success ? parsed.data : null;
}
