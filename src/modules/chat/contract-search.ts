// The contract-search path of a chat turn: searching → found → contract events, and a note for the answer.
import type { PipelineDeps } from '../agents/pipeline.js';
import {
  type ContractSource,
  SAMPLE_DATA_NOTICE,
  type SearchResult,
  searchContracts,
} from '../investigations/sources/index.js';
import type { Contract } from '../investigations/types.js';
import { agencyOf, resolveFilters } from '../query/select.js';
import { asksForSuspects, createSuspectScan, type SuspectScan, suspectLines } from './suspects.js';

const SHOWN = 10;
const SUSPECTS_SHOWN = 5;

const brl = new Intl.NumberFormat('pt-BR', { style: 'currency', currency: 'BRL' });

/** The `contract.data` shape of API.md §1.2. */
export function contractEventData(c: Contract) {
  return {
    id: c.id,
    numero: c.numero,
    objeto: c.objeto,
    valor: c.valor_final,
    valor_formatado: brl.format(c.valor_final),
    fornecedor: c.fornecedor,
    cnpj_fornecedor: c.cnpj_fornecedor,
    orgao: c.orgao,
    data_assinatura: c.data_assinatura,
    vigencia_inicio: c.data_assinatura,
    vigencia_fim: null,
    situacao: c.situacao,
    modalidade: c.modalidade,
    processo: null,
  };
}

function note(found: SearchResult, sample: boolean): string {
  const { top, total } = found;
  if (total === 0) {
    return `Não encontrei ${found.description}${sample ? ' na base de exemplo' : ''}. Tente citar um órgão, um fornecedor ou o objeto do contrato.`;
  }
  const lines = top
    .slice(0, 5)
    .map(
      (c, i) =>
        `${i + 1}. **${c.objeto}** — ${c.fornecedor} — ${brl.format(c.valor_final)} (${c.orgao}, ${c.data_assinatura})`,
    );
  return [
    `Encontrei ${countText(found)} (${found.description}). Os mais relevantes:`,
    '',
    ...lines,
    '',
    sample ? `_${SAMPLE_DATA_NOTICE}_` : 'Fonte: Portal da Transparência.',
    'Para procurar anomalias nesses dados, abra uma investigação completa.',
  ].join('\n');
}

function countText(found: SearchResult): string {
  const n = found.total.toLocaleString('pt-BR');
  const noun = found.total === 1 ? 'contrato' : 'contratos';
  return found.truncated ? `pelo menos ${n} ${noun}` : `${n} ${noun}`;
}

function suspectsNote(
  found: SearchResult,
  suspects: ReturnType<SuspectScan['run']>,
  sample: boolean,
): string {
  const head = `Encontrei ${countText(found)} (${found.description}).`;
  const source = sample ? `_${SAMPLE_DATA_NOTICE}_` : 'Fonte: Portal da Transparência.';
  if (suspects.length === 0) {
    return [head, 'Os seis detectores não apontaram nenhuma anomalia nesses contratos.', '', source].join(
      '\n',
    );
  }
  return [
    `${head} Os detectores apontaram ${suspects.length} achado${suspects.length === 1 ? '' : 's'}; os mais graves:`,
    '',
    ...suspectLines(suspects, SUSPECTS_SHOWN),
    '',
    source,
  ].join('\n');
}

/** Starts a durable investigation for a chat turn; returns its id. */
export type StartInvestigation = (
  userId: string | null,
  sessionId: string,
  query: string,
) => Promise<{ investigation_id: string; sample_data: boolean }>;

// "abra uma investigação", "iniciar investigação", "rode uma investigação completa"…
const OPEN_INVESTIGATION =
  /\b(abr[aei]r?|inici[ae]r?|comec[ae]r?|fa[cz]a|fazer|rod[ae]r?|lanc[ae]r?)\b.{0,40}\binvestiga/;

export function wantsInvestigation(message: string): boolean {
  const text = message
    .toLowerCase()
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '');
  return OPEN_INVESTIGATION.test(text);
}

export function createContractSearch(
  source: () => ContractSource,
  startInvestigation?: StartInvestigation,
): NonNullable<PipelineDeps['searchContracts']> {
  return async function* (input, signal) {
    const src = source();
    const where = src.sample ? 'na base de exemplo' : 'no Portal da Transparência';
    yield {
      type: 'event',
      event: { type: 'thinking', message: 'Zumbi está preparando a busca de contratos...' },
    };
    yield {
      type: 'event',
      event: { type: 'searching', message: `Buscando contratos ${where}...`, query: input.message },
    };
    // The Portal lists contracts one agency at a time: say so instead of failing.
    if (src.kind === 'portal' && !agencyOf(resolveFilters(input.message, {}))) {
      yield {
        type: 'event',
        event: { type: 'found', message: 'Nenhum órgão na pergunta.', count: 0, sample_data: src.sample },
      };
      yield {
        type: 'extra',
        fields: { contracts: [], total_contracts: 0, download_available: false, sample_data: false },
      };
      yield {
        type: 'note',
        text: 'O Portal da Transparência só lista contratos por órgão. Diga qual órgão (por exemplo, "contratos do Ministério da Saúde em 2024" ou "órgão 36000") e eu busco.',
      };
      return;
    }
    const suspicious = asksForSuspects(input.message);
    const scan = suspicious ? createSuspectScan() : null;
    let found: SearchResult;
    try {
      found = await searchContracts(src, input.message, SHOWN, signal, scan ? (p) => scan.add(p) : undefined);
    } catch (err) {
      if (signal.aborted) throw err;
      // A failing data source must not fail the turn: the agent answers and says the search failed.
      yield {
        type: 'event',
        event: { type: 'found', message: 'A busca de contratos falhou.', count: 0, sample_data: src.sample },
      };
      yield {
        type: 'extra',
        fields: { contracts: [], total_contracts: 0, download_available: false, sample_data: src.sample },
      };
      yield {
        type: 'note',
        text: `A busca ${where} falhou agora (${(err as Error).message.slice(0, 120)}). Tente de novo em instantes.`,
      };
      return;
    }
    const shown = found.top.map(contractEventData);
    yield {
      type: 'event',
      event: {
        type: 'found',
        message: `${found.total} contrato(s) encontrado(s): ${found.description}`,
        count: found.total,
        sample_data: src.sample,
      },
    };
    for (const data of shown) yield { type: 'event', event: { type: 'contract', data } };
    yield {
      type: 'extra',
      fields: {
        contracts: shown,
        total_contracts: found.total,
        download_available: found.total > 0,
        sample_data: src.sample,
        selection: found.description,
      },
    };
    let text: string;
    if (scan) {
      yield { type: 'event', event: { type: 'thinking', message: 'Rodando os detectores de anomalias...' } };
      const suspects = scan.run();
      yield {
        type: 'extra',
        fields: { findings: suspects.slice(0, SUSPECTS_SHOWN).map(({ finding }) => finding) },
      };
      text = suspectsNote(found, suspects, src.sample);
    } else {
      text = note(found, src.sample);
    }
    if (startInvestigation && ((scan && found.total > 0) || wantsInvestigation(input.message))) {
      yield { type: 'event', event: { type: 'thinking', message: 'Abrindo uma investigação completa...' } };
      try {
        const started = await startInvestigation(input.userId, input.sessionId, input.message);
        yield { type: 'extra', fields: { investigation_id: started.investigation_id } };
        text += `\n\nInvestigação completa aberta: [abrir a investigação](/api/v1/investigations/${started.investigation_id}) — resultados em \`/api/v1/investigations/${started.investigation_id}/results\`, acompanhamento em \`/api/v1/investigations/${started.investigation_id}/stream\`.`;
      } catch (err) {
        if (signal.aborted) throw err;
        // The answer stands without the investigation; say why it was not opened.
        text += `\n\nNão consegui abrir a investigação completa agora (${(err as Error).message.slice(0, 160)}).`;
      }
    }
    yield { type: 'note', text };
  };
}
