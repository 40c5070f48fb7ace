// The contract-search path of a chat turn: searching → found → contract events, and a note for the answer.
import type { PipelineDeps } from '../agents/pipeline.js';
import { type ContractSource, SAMPLE_DATA_NOTICE, searchContracts } from '../investigations/sources/index.js';
import type { Contract } from '../investigations/types.js';

const SHOWN = 10;
const SCANNED = 200;

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

function note(found: Contract[], total: number, sample: boolean): string {
  if (found.length === 0) {
    return `Não encontrei contratos que correspondam à pergunta${sample ? ' na base de exemplo' : ''}. Tente citar um órgão, um fornecedor ou o objeto do contrato.`;
  }
  const lines = found
    .slice(0, 5)
    .map(
      (c, i) =>
        `${i + 1}. **${c.objeto}** — ${c.fornecedor} — ${brl.format(c.valor_final)} (${c.orgao}, ${c.data_assinatura})`,
    );
  return [
    `Encontrei ${total} contrato${total === 1 ? '' : 's'} relacionado${total === 1 ? '' : 's'}. Os mais relevantes:`,
    '',
    ...lines,
    '',
    sample ? `_${SAMPLE_DATA_NOTICE}_` : 'Fonte: Portal da Transparência.',
    'Para procurar anomalias nesses dados, abra uma investigação completa.',
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
    let found: Contract[];
    try {
      found = await searchContracts(src, input.message, SCANNED, signal);
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
    const shown = found.slice(0, SHOWN).map(contractEventData);
    yield {
      type: 'event',
      event: {
        type: 'found',
        message: `${found.length} contrato(s) encontrado(s)`,
        count: found.length,
        sample_data: src.sample,
      },
    };
    for (const data of shown) yield { type: 'event', event: { type: 'contract', data } };
    yield {
      type: 'extra',
      fields: {
        contracts: shown,
        total_contracts: found.length,
        download_available: found.length > 0,
        sample_data: src.sample,
      },
    };
    let text = note(found, found.length, src.sample);
    if (startInvestigation && wantsInvestigation(input.message)) {
      yield { type: 'event', event: { type: 'thinking', message: 'Abrindo uma investigação completa...' } };
      const started = await startInvestigation(input.userId, input.sessionId, input.message);
      yield { type: 'extra', fields: { investigation_id: started.investigation_id } };
      text += `\n\nAbri a investigação \`${started.investigation_id}\`: acompanhe em \`/api/v1/investigations/${started.investigation_id}/stream\`.`;
    }
    yield { type: 'note', text };
  };
}
