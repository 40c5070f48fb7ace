// Keyword intent detection and agent routing: cheap, deterministic, good enough to pick an agent.
import { DEFAULT_AGENT_ID, resolveAgent } from './roster.js';

export type Intent =
  | 'greeting'
  | 'thanks'
  | 'goodbye'
  | 'help'
  | 'about'
  | 'investigate'
  | 'explain'
  | 'unknown';

export interface DetectedIntent {
  intent: Intent;
  confidence: number;
}

function normalise(text: string): string {
  return text
    .toLowerCase()
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9\s]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

const rules: Array<{ intent: Intent; patterns: RegExp[] }> = [
  {
    intent: 'investigate',
    patterns: [
      /\b(investig\w*|anomali\w*|irregular\w*|suspeit\w*|fraude\w*|superfatur\w*|desvio\w*|corrup\w*)\b/,
      /\b(contrato\w*|licitac\w*|fornecedor\w*|gasto\w*|despesa\w*|compra\w*|pregao|dispensa|empenho\w*)\b/,
    ],
  },
  {
    intent: 'help',
    patterns: [/\b(ajuda|ajude|socorro|como funciona|como usar|o que (voce|vc) (faz|pode)|help|comandos?)\b/],
  },
  {
    intent: 'about',
    patterns: [
      /\b(quem (e|sao) (voce|voces|vc)|sobre (voce|o sistema|o cidadao)|cidadao ai|se apresent\w*)\b/,
    ],
  },
  { intent: 'thanks', patterns: [/\b(obrigad\w*|valeu|agradec\w*|thanks|brigad\w*)\b/] },
  { intent: 'goodbye', patterns: [/\b(tchau|ate logo|ate mais|adeus|falou|bye)\b/] },
  {
    intent: 'greeting',
    patterns: [/^(oi+|ola|e ai|eai|opa|bom dia|boa tarde|boa noite|hello|hi|hey|salve)\b/],
  },
  {
    intent: 'explain',
    patterns: [/\b(o que e|o que sao|explica\w*|explique|significa|como funciona)\b/],
  },
];

// "O que é fracionamento de despesa?", "explique o que significa inexigibilidade": a concept, not a search.
const CONCEPT_QUESTION =
  /^(?:(?:e |mas |entao )?o que (?:e|sao|significa|quer dizer)|que (?:e|sao)|qual (?:e )?(?:a )?diferenca|explique|explica|me explica|defina|definicao de|como funcionam? (?=[a-z])|para que serve|pra que serve)\b/;
// …unless it also asks for data: "o que é suspeito nos contratos da saúde?".
const ASKS_FOR_DATA =
  /\b(suspeit\w*|investig\w*|mostre|liste|quais contratos|contratos d[oae]s?|busque|procure|encontre)\b|\b(?:19|20)\d{2}\b/;

export function detectIntent(message: string): DetectedIntent {
  const text = normalise(message);
  if (!text) return { intent: 'unknown', confidence: 0.2 };
  if (CONCEPT_QUESTION.test(text) && !ASKS_FOR_DATA.test(text)) {
    return { intent: 'explain', confidence: text.length > 200 ? 0.75 : 0.85 };
  }
  for (const rule of rules) {
    const hits = rule.patterns.filter((p) => p.test(text)).length;
    if (hits === 0) continue;
    // More matching signals and shorter messages make the guess more certain.
    const base = 0.6 + 0.15 * Math.min(hits, 2);
    const lengthPenalty = text.length > 200 ? 0.1 : 0;
    return { intent: rule.intent, confidence: Math.round((base - lengthPenalty) * 100) / 100 };
  }
  return { intent: 'unknown', confidence: 0.3 };
}

const agentForIntent: Partial<Record<Intent, string>> = {
  investigate: 'zumbi',
  explain: 'drummond',
};

export interface RoutedAgent {
  /** The canonical id (what the prompt and the database use). */
  id: string;
  name: string;
  /** The id the client asked for, echoed back in `agent_selected` (the frontend keys on it). */
  echoId: string;
}

/** An explicit agent (id or alias) wins; otherwise the intent picks one; else the orchestrator. */
export function routeAgent(requested: string | undefined, detected: DetectedIntent): RoutedAgent {
  if (requested) {
    const agent = resolveAgent(requested);
    if (agent) return { id: agent.id, name: agent.name, echoId: requested };
  }
  const id = agentForIntent[detected.intent] ?? DEFAULT_AGENT_ID;
  const agent = resolveAgent(id)!;
  return { id: agent.id, name: agent.name, echoId: agent.id };
}
