// The agent pipeline of one turn: intent → agent → memory + history → model stream.
import type { Logger } from 'pino';
import type { PipelineEvent, TurnInput } from '../generation/generation.js';
import type { ChatTurnMessage } from '../llm/provider.js';
import { detectIntent, routeAgent } from './intent.js';
import type { TurnModel } from './offline.js';
import { getAgent } from './roster.js';

export type { PipelineEvent, TurnInput };

export interface PromptParts {
  agentId: string;
  history: Array<{ role: 'user' | 'assistant'; content: string }>;
  memory: { conversation: string[]; episodic: string[] };
  userMessage: string;
  context: Record<string, unknown> | null;
  /** Appended to the agent's system prompt (per-turn, e.g. the academy's lesson). */
  promptSuffix?: string;
}

export interface PipelineDeps {
  model: TurnModel;
  /** Recent turns before `beforeSeq`, oldest first (only loaded for real models). */
  loadHistory(
    sessionId: string,
    beforeSeq: number,
  ): Promise<Array<{ role: 'user' | 'assistant'; content: string }>>;
  memory: {
    conversation(sessionId: string): Promise<string[]>;
    episodes(userId: string): Promise<string[]>;
  } | null;
  buildMessages(parts: PromptParts): ChatTurnMessage[];
  /** Optional contract-search step for the investigate intent (events + a note for the answer). */
  searchContracts?: (
    input: TurnInput,
    signal: AbortSignal,
  ) => AsyncIterable<PipelineEvent | { type: 'note'; text: string }>;
  maxTokens: number;
  log: Pick<Logger, 'warn' | 'debug'>;
}

const suggestions: Record<string, string[]> = {
  greeting: ['Investigar contratos', 'Como funciona uma licitação?', 'Quem são os agentes?'],
  help: ['Investigar contratos de saúde', 'O que é dispensa de licitação?'],
  investigate: [
    'Abrir uma investigação completa',
    'Ver fornecedores mais contratados',
    'Explicar os achados',
  ],
  explain: ['Dar um exemplo real', 'Investigar contratos relacionados'],
};

export async function* runPipeline(
  deps: PipelineDeps,
  input: TurnInput,
  signal: AbortSignal,
): AsyncIterable<PipelineEvent> {
  yield { type: 'event', event: { type: 'detecting', message: 'Analisando sua mensagem...' } };
  const intent = detectIntent(input.message);
  yield { type: 'event', event: { type: 'intent', intent: intent.intent, confidence: intent.confidence } };

  // A fixed agent (the academy's teacher) answers whatever the intent.
  const agent = routeAgent(input.fixedAgentId ?? input.requestedAgentId, intent);
  yield {
    type: 'routed',
    agent,
    intent,
    suggestedActions: suggestions[intent.intent] ?? ['Investigar contratos', 'Pedir ajuda'],
  };
  yield { type: 'event', event: { type: 'agent_selected', agent_id: agent.echoId, agent_name: agent.name } };

  let contextNote: string | undefined;
  if (intent.intent === 'investigate' && deps.searchContracts && !input.fixedAgentId) {
    for await (const ev of deps.searchContracts(input, signal)) {
      if (ev.type === 'note') contextNote = ev.text;
      else yield ev;
    }
  }

  const model = deps.model;
  // The offline agent answers from what routing decided; it reads no prompt, history or memory.
  if (model.kind === 'offline') {
    const question = { agentId: agent.id, intent: intent.intent, userMessage: input.message, contextNote };
    yield { type: 'model', model: 'offline', stream: model.answer(question, signal) };
    return;
  }
  yield {
    type: 'event',
    event: { type: 'thinking', message: `${getAgent(agent.id).name} está pensando...` },
  };
  const [history, memory] = await Promise.all([
    deps.loadHistory(input.sessionId, input.userSeq),
    loadMemory(deps, input),
  ]);
  const context = contextNote
    ? { ...(input.context ?? {}), contratos_encontrados: contextNote }
    : input.context;
  const messages = deps.buildMessages({
    agentId: agent.id,
    history,
    memory,
    userMessage: input.message,
    context,
    promptSuffix: input.promptSuffix,
  });
  const name = model.modelFor(agent.id);

  // Handed over rather than delegated with yield*: each token then crosses one async generator, not two.
  yield {
    type: 'model',
    model: name,
    stream: model.stream({ model: name, messages, maxTokens: deps.maxTokens, signal }),
  };
}

async function loadMemory(deps: PipelineDeps, input: TurnInput): Promise<PromptParts['memory']> {
  if (!deps.memory) return { conversation: [], episodic: [] };
  const [conversation, episodic] = await Promise.all([
    deps.memory.conversation(input.sessionId),
    input.userId ? deps.memory.episodes(input.userId) : Promise.resolve([]),
  ]);
  return { conversation, episodic };
}
