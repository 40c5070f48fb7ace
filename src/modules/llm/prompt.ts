// Builds the model's message list: persona + memory + request context, recent history within a budget, the turn.
import { type ChatTurnMessage, estimateTokens } from './provider.js';

export interface PromptInput {
  systemPrompt: string;
  /** Oldest first, excluding the current message. */
  history: Array<{ role: 'user' | 'assistant'; content: string }>;
  memory: { conversation: string[]; episodic: string[] };
  userMessage: string;
  historyTokenBudget: number;
  context?: Record<string, unknown>;
}

// The memory section stays short: it is a reminder, the history carries the conversation itself.
const MEMORY_ITEMS = 5;
const MEMORY_ITEM_CHARS = 400;

function clip(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

function memorySection(memory: PromptInput['memory']): string | null {
  const parts: string[] = [];
  const list = (items: string[]) =>
    items
      .filter((i) => i.trim())
      .slice(-MEMORY_ITEMS)
      .map((i) => `- ${clip(i, MEMORY_ITEM_CHARS)}`)
      .join('\n');
  const conversation = list(memory.conversation);
  const episodic = list(memory.episodic);
  if (conversation) parts.push(`Conversa recente (resumos, do mais antigo ao mais novo):\n${conversation}`);
  if (episodic) parts.push(`O que você lembra deste usuário de conversas anteriores:\n${episodic}`);
  return parts.length ? `## Memória\n${parts.join('\n\n')}` : null;
}

/**
 * Groups the history into exchanges (a user message and its reply). Unanswered questions, empty
 * messages and replies with no question are dropped: strict chat templates (Mistral, Gemma on vLLM)
 * reject anything but system, user, assistant, user, … alternating.
 */
function exchanges(history: PromptInput['history']): Array<[ChatTurnMessage, ChatTurnMessage]> {
  const out: Array<[ChatTurnMessage, ChatTurnMessage]> = [];
  let question: string | null = null;
  let answer: string[] = [];
  const flush = () => {
    if (question !== null && answer.length > 0) {
      out.push([
        { role: 'user', content: question },
        { role: 'assistant', content: answer.join('\n\n') },
      ]);
    }
    question = null;
    answer = [];
  };
  for (const m of history) {
    if (!m.content.trim()) continue;
    if (m.role === 'user') {
      flush();
      question = m.content;
    } else if (question !== null) {
      answer.push(m.content);
    }
  }
  flush();
  return out;
}

export function buildPrompt(input: PromptInput): ChatTurnMessage[] {
  const system = [input.systemPrompt.trim()];
  const memory = memorySection(input.memory);
  if (memory) system.push(memory);
  if (input.context && Object.keys(input.context).length > 0) {
    system.push(`## Contexto da requisição (JSON enviado pelo cliente)\n${JSON.stringify(input.context)}`);
  }

  // Newest exchanges first until the budget is spent; an exchange that does not fit ends the walk,
  // so the history kept is always a contiguous recent stretch.
  const kept: ChatTurnMessage[][] = [];
  let spent = 0;
  const all = exchanges(input.history);
  for (let i = all.length - 1; i >= 0; i--) {
    const pair = all[i]!;
    const cost = estimateTokens(pair[0].content) + estimateTokens(pair[1].content);
    if (spent + cost > input.historyTokenBudget) break;
    spent += cost;
    kept.push(pair);
  }

  return [
    { role: 'system', content: system.join('\n\n') },
    ...kept.reverse().flat(),
    { role: 'user', content: input.userMessage },
  ];
}
