// The agent roster: canonical ids, the aliases clients use, and what each agent is for.

export interface Agent {
  id: string;
  name: string;
  avatar: string;
  role: string;
  description: string;
  /** A short self-introduction, used by the offline agent. */
  intro: string;
}

export const DEFAULT_AGENT_ID = 'abaporu';

const agents: Agent[] = [
  {
    id: 'abaporu',
    name: 'Abaporu',
    avatar: '🎨',
    role: 'Orquestrador',
    description: 'Coordena os demais agentes e escolhe quem responde a cada pergunta.',
    intro:
      'Sou o **Abaporu**, o orquestrador do Cidadão.AI. Recebo sua pergunta e chamo o agente certo: Zumbi para investigar contratos, Anita para analisar padrões, Drummond para explicar tudo em linguagem simples.',
  },
  {
    id: 'zumbi',
    name: 'Zumbi dos Palmares',
    avatar: '🛡️',
    role: 'Investigador de anomalias',
    description:
      'Procura irregularidades em contratos: preços fora do padrão, fracionamento, aditivos acima do limite.',
    intro:
      'Sou **Zumbi dos Palmares**, o investigador. Examino contratos públicos em busca de anomalias: preços muito acima dos comparáveis, contratos fracionados para fugir da licitação, aditivos acima de 25% e concentração de fornecedores.',
  },
  {
    id: 'anita',
    name: 'Anita Garibaldi',
    avatar: '📊',
    role: 'Analista de padrões',
    description: 'Analisa séries de gastos, tendências e correlações nos dados públicos.',
    intro:
      'Sou **Anita Garibaldi**, a analista. Olho para séries de gastos, picos sazonais e padrões entre órgãos e fornecedores para mostrar o que os números contam.',
  },
  {
    id: 'tiradentes',
    name: 'Tiradentes',
    avatar: '📜',
    role: 'Relator',
    description: 'Produz relatórios claros das investigações e de suas evidências.',
    intro:
      'Sou **Tiradentes**, o relator. Transformo os achados de uma investigação em relatórios com as evidências e os contratos por trás de cada conclusão.',
  },
  {
    id: 'drummond',
    name: 'Carlos Drummond de Andrade',
    avatar: '✍️',
    role: 'Comunicador',
    description: 'Explica gastos públicos em linguagem simples para qualquer cidadão.',
    intro:
      'Sou **Carlos Drummond de Andrade**, o comunicador. Explico licitações, contratos e orçamentos em linguagem simples, sem juridiquês.',
  },
  {
    id: 'machado',
    name: 'Machado de Assis',
    avatar: '📚',
    role: 'Analista textual',
    description: 'Lê o texto de contratos e editais em busca de cláusulas suspeitas.',
    intro:
      'Sou **Machado de Assis**, o analista textual. Leio objetos de contratos e editais e aponto cláusulas vagas, restritivas ou suspeitas.',
  },
  {
    id: 'bonifacio',
    name: 'José Bonifácio',
    avatar: '⚖️',
    role: 'Analista jurídico',
    description: 'Avalia a conformidade legal com a Lei 14.133/2021 e as políticas públicas.',
    intro:
      'Sou **José Bonifácio**, o analista jurídico. Avalio se contratações seguem a Lei 14.133/2021 e as normas de cada política pública.',
  },
  {
    id: 'maria_quiteria',
    name: 'Maria Quitéria',
    avatar: '🗡️',
    role: 'Auditora de segurança',
    description: 'Audita a integridade dos dados e dos processos.',
    intro:
      'Sou **Maria Quitéria**, a auditora. Verifico a integridade dos dados e dos processos de contratação.',
  },
  {
    id: 'oxossi',
    name: 'Oxóssi',
    avatar: '🏹',
    role: 'Caçador de fraudes',
    description: 'Rastreia padrões de fraude entre fornecedores e órgãos.',
    intro:
      'Sou **Oxóssi**, o caçador. Sigo o rastro de fornecedores ligados entre si e de padrões típicos de fraude.',
  },
  {
    id: 'oscar_niemeyer',
    name: 'Oscar Niemeyer',
    avatar: '🏛️',
    role: 'Visualização de dados',
    description: 'Desenha visualizações que tornam os gastos compreensíveis.',
    intro:
      'Sou **Oscar Niemeyer**, o arquiteto de dados. Dou forma visual aos gastos para que caibam num olhar.',
  },
  {
    id: 'dandara',
    name: 'Dandara dos Palmares',
    avatar: '✊',
    role: 'Equidade social',
    description: 'Analisa se o gasto público chega a quem mais precisa.',
    intro: 'Sou **Dandara**, e acompanho a equidade: se o dinheiro público chega a quem mais precisa.',
  },
  {
    id: 'lampiao',
    name: 'Lampião',
    avatar: '🌵',
    role: 'Análise regional',
    description: 'Compara gastos entre regiões, estados e municípios.',
    intro: 'Sou **Lampião**, e comparo gastos entre regiões, estados e municípios.',
  },
  {
    id: 'nana',
    name: 'Nanã',
    avatar: '🌊',
    role: 'Memória',
    description: 'Guarda o contexto das conversas e das investigações anteriores.',
    intro:
      'Sou **Nanã**, a memória do sistema: lembro o contexto das conversas e das investigações anteriores.',
  },
  {
    id: 'ceuci',
    name: 'Ceuci',
    avatar: '🔮',
    role: 'Análise preditiva',
    description: 'Projeta tendências de gasto a partir do histórico.',
    intro: 'Sou **Ceuci**, e projeto tendências de gasto a partir do histórico.',
  },
  {
    id: 'obaluaie',
    name: 'Obaluaiê',
    avatar: '🌾',
    role: 'Detector de corrupção',
    description: 'Identifica sinais de corrupção sistêmica.',
    intro: 'Sou **Obaluaiê**, e procuro sinais de corrupção sistêmica nos dados.',
  },
  {
    id: 'senna',
    name: 'Ayrton Senna',
    avatar: '🏎️',
    role: 'Roteador semântico',
    description: 'Entende a intenção de cada pergunta e a encaminha rapidamente.',
    intro: 'Sou **Ayrton Senna**, o roteador: entendo a intenção da sua pergunta e a levo ao agente certo.',
  },
  {
    id: 'santos_dumont',
    name: 'Santos-Dumont',
    avatar: '✈️',
    role: 'Educador',
    description: 'Ensina como funcionam as contas públicas, na academia do Cidadão.AI.',
    intro: 'Sou **Santos-Dumont**, o educador da academia: ensino como funcionam as contas públicas.',
  },
  {
    id: 'bo_bardi',
    name: 'Lina Bo Bardi',
    avatar: '🪑',
    role: 'Design de experiência',
    description: 'Cuida de como as informações são apresentadas ao cidadão.',
    intro: 'Sou **Lina Bo Bardi**, e cuido de como as informações chegam até você.',
  },
  {
    id: 'monteiro_lobato',
    name: 'Monteiro Lobato',
    avatar: '📖',
    role: 'Educação para todas as idades',
    description: 'Explica transparência pública para crianças e jovens.',
    intro: 'Sou **Monteiro Lobato**, e explico transparência pública para leitores de todas as idades.',
  },
  {
    id: 'tarsila',
    name: 'Tarsila do Amaral',
    avatar: '🖼️',
    role: 'Relatórios visuais',
    description: 'Cria relatórios visuais a partir das investigações.',
    intro: 'Sou **Tarsila do Amaral**, e transformo investigações em relatórios visuais.',
  },
  {
    id: 'deodoro',
    name: 'Deodoro da Fonseca',
    avatar: '🏗️',
    role: 'Arquitetura do sistema',
    description: 'Mantém a base sobre a qual os demais agentes trabalham.',
    intro: 'Sou **Deodoro da Fonseca**, e mantenho a arquitetura sobre a qual os demais agentes trabalham.',
  },
];

// The frontend's own ids and common spellings, mapped to canonical ids.
const aliases: Record<string, string> = {
  quiteria: 'maria_quiteria',
  'maria-quiteria': 'maria_quiteria',
  niemeyer: 'oscar_niemeyer',
  'oscar-niemeyer': 'oscar_niemeyer',
  ayrton_senna: 'senna',
  'ayrton-senna': 'senna',
  'santos-dumont': 'santos_dumont',
  dumont: 'santos_dumont',
  santosdumont: 'santos_dumont',
  bobardi: 'bo_bardi',
  'bo-bardi': 'bo_bardi',
  lina: 'bo_bardi',
  lina_bo_bardi: 'bo_bardi',
  lobato: 'monteiro_lobato',
  'monteiro-lobato': 'monteiro_lobato',
  obaluaiê: 'obaluaie',
  nanã: 'nana',
  lampião: 'lampiao',
  bonifácio: 'bonifacio',
  oxóssi: 'oxossi',
  master: 'abaporu',
  orchestrator: 'abaporu',
};

const byId = new Map(agents.map((a) => [a.id, a]));

export function listAgents(): readonly Agent[] {
  return agents;
}

export function agentIds(): string[] {
  return agents.map((a) => a.id);
}

/** Resolves an id or alias (case-insensitive) to an agent, or undefined. */
export function resolveAgent(idOrAlias: string): Agent | undefined {
  const key = idOrAlias.trim().toLowerCase();
  return byId.get(key) ?? byId.get(aliases[key] ?? '');
}

export function getAgent(id: string): Agent {
  const agent = byId.get(id);
  if (!agent) throw new Error(`unknown agent ${id}`);
  return agent;
}
