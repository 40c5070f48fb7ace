// The built-in offline agent: a canned-answer agent (not a model) that streams the roster's texts when no model is configured.
import { estimateTokens, type ModelEvent, type ModelProvider } from '../llm/provider.js';
import { explainConcept } from './glossary.js';
import { type Agent, getAgent, listAgents } from './roster.js';

function helpText(): string {
  return [
    'Posso ajudar você a acompanhar o dinheiro público. Experimente:',
    '',
    '- **Investigar contratos**: "investigue contratos de material de escritório do Ministério da Saúde"',
    '- **Entender termos**: "o que é dispensa de licitação?"',
    '- **Conhecer os agentes**: "quem são vocês?"',
    '',
    'Sem uma chave de modelo configurada, respondo com o agente offline e com dados de exemplo.',
  ].join('\n');
}

function aboutText(): string {
  const lines = listAgents()
    .slice(0, 8)
    .map((a) => `- **${a.name}** — ${a.role.toLowerCase()}: ${a.description}`);
  return [
    'O **Cidadão.AI** é um assistente de transparência dos gastos públicos brasileiros. Somos uma equipe de agentes:',
    '',
    ...lines,
    '',
    'Pergunte sobre contratos, órgãos ou fornecedores e eu chamo o agente certo.',
  ].join('\n');
}

function investigateText(agent: Agent, note?: string): string {
  return [
    `${agent.intro}`,
    '',
    'Para investigar, eu procuro nos contratos disponíveis:',
    '',
    '1. **Preços fora do padrão** entre contratos comparáveis (mediana e desvio absoluto);',
    '2. **Fracionamento**: vários contratos logo abaixo do limite de dispensa;',
    '3. **Aditivos acima de 25%** do valor inicial;',
    '4. **Concentração** de um fornecedor num órgão e **picos** de fim de ano.',
    '',
    note ??
      'Você pode abrir uma investigação completa em `POST /api/v1/investigations/`. Sem chave do Portal da Transparência, uso a base de exemplo incluída (dados de amostra).',
  ].join('\n');
}

function explainText(agent: Agent, message: string): string {
  const concept = explainConcept(message);
  if (concept) {
    return [
      `${agent.intro}`,
      '',
      `**${concept.title}** ${concept.text}`,
      '',
      'Quer que eu procure casos assim nos contratos? Pergunte, por exemplo, "quais contratos da saúde são suspeitos?".',
    ].join('\n');
  }
  return [
    `${agent.intro}`,
    '',
    `Sobre "${message.trim().slice(0, 120)}": no modo offline não tenho um modelo de linguagem para uma explicação sob medida, mas posso adiantar o essencial:`,
    '',
    '- **Licitação** é a disputa pública que escolhe quem fornece ao governo;',
    '- **Dispensa** e **inexigibilidade** são as exceções previstas na Lei 14.133/2021;',
    '- Todo contrato federal aparece no **Portal da Transparência**.',
  ].join('\n');
}

export function offlineAnswer(agentId: string, intent: string, message: string, note?: string): string {
  const agent = getAgent(agentId);
  switch (intent) {
    case 'greeting':
      return `Olá! ${agent.intro}\n\nComo posso ajudar você hoje?`;
    case 'thanks':
      return 'De nada! Transparência se faz junto. Se quiser, posso investigar outro órgão ou contrato.';
    case 'goodbye':
      return 'Até logo! Volte quando quiser acompanhar os gastos públicos.';
    case 'help':
      return helpText();
    case 'about':
      return aboutText();
    case 'investigate':
      return investigateText(agent, note);
    case 'explain':
      return explainText(agent, message);
    default:
      return `${agent.intro}\n\nNão tenho certeza do que você procura. Tente perguntar sobre um contrato, um órgão ou um fornecedor, ou digite **ajuda**.`;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export interface OfflineOptions {
  /** Pause between words, to look like a model; 0 streams as fast as the socket takes it. */
  tokenDelayMs?: number;
}

/** What the pipeline already decided: the offline agent answers from it, not from a prompt. */
export interface OfflineQuestion {
  agentId: string;
  intent: string;
  userMessage: string;
  contextNote?: string;
}

export interface OfflineAgent {
  kind: 'offline';
  /** One line for the boot log. */
  describe: string;
  /** The answer as model events, so the producer reads it like a model's stream. */
  answer(q: OfflineQuestion, signal: AbortSignal): AsyncIterable<ModelEvent>;
}

/** What answers a turn: a real model, or the offline agent. */
export type TurnModel = ModelProvider | OfflineAgent;

interface CutAnswer {
  tokens: ReadonlyArray<Readonly<ModelEvent>>;
  completionTokens: number;
}

// Most answers depend only on the agent and the intent (not on the message or a search note):
// those are cut into token events once, not on every turn. Keys are roster ids × intents.
const cutAnswers = new Map<string, CutAnswer>();
const MAX_CUT_ANSWERS = 256;

function cutAnswer(q: OfflineQuestion): CutAnswer {
  const fixed = q.intent !== 'explain' && q.contextNote === undefined;
  const key = `${q.agentId}\n${q.intent}`;
  const known = fixed ? cutAnswers.get(key) : undefined;
  if (known) return known;
  const text = offlineAnswer(q.agentId, q.intent, q.userMessage, q.contextNote);
  // Word pieces keep their trailing whitespace, so newlines and Markdown survive intact.
  const pieces = text.match(/\s+|\S+\s*/g) ?? [];
  const cut: CutAnswer = {
    tokens: pieces.map((piece) => Object.freeze({ type: 'token' as const, text: piece })),
    completionTokens: estimateTokens(text),
  };
  if (fixed && cutAnswers.size < MAX_CUT_ANSWERS) cutAnswers.set(key, cut);
  return cut;
}

/** The answer as model events, word by word; checks for an abort before each word. */
function* answerEvents(
  q: OfflineQuestion,
  signal: AbortSignal,
  delayed: boolean,
): Generator<ModelEvent | 'pause'> {
  const { tokens, completionTokens } = cutAnswer(q);
  for (const token of tokens) {
    if (signal.aborted) throw signal.reason;
    if (delayed) yield 'pause';
    yield token;
  }
  yield {
    type: 'done',
    finishReason: 'stop',
    usage: {
      prompt_tokens: estimateTokens(q.userMessage),
      completion_tokens: completionTokens,
      estimated: true,
    },
  };
}

async function* paced(q: OfflineQuestion, signal: AbortSignal, delay: number): AsyncIterable<ModelEvent> {
  for (const ev of answerEvents(q, signal, true)) {
    if (ev === 'pause') await sleep(delay, signal);
    else yield ev;
  }
}

/**
 * Without a delay the answer (a few hundred words at most) is there at once: the stream is also
 * synchronously iterable, so a consumer that looks (the generation) reads it without a promise per
 * word, and the reply leaves in one socket write instead of being split by event-loop yields.
 */
function immediate(
  q: OfflineQuestion,
  signal: AbortSignal,
): AsyncIterable<ModelEvent> & Iterable<ModelEvent> {
  const events = answerEvents(q, signal, false) as Generator<ModelEvent>;
  return {
    [Symbol.iterator]: () => events,
    async *[Symbol.asyncIterator]() {
      yield* events;
    },
  };
}

export function createOfflineAgent(opts: OfflineOptions = {}): OfflineAgent {
  const delay = opts.tokenDelayMs ?? 0;
  return {
    kind: 'offline',
    describe: 'offline agent (built-in answers; set LLM_API_KEY for a real model)',
    answer: (q, signal) => (delay > 0 ? paced(q, signal, delay) : immediate(q, signal)),
  };
}
