// The academy's fixed catalogue: teachers (agents of the roster), tracks, ranks and the level rules.
import { ACADEMY_TRACKS } from '../../db/schema/academy.js';
import { getAgent, resolveAgent } from '../agents/roster.js';

export type Track = (typeof ACADEMY_TRACKS)[number];
export { ACADEMY_TRACKS };

interface TeacherInfo {
  tracks: Track[];
  specialty: string;
  personality: string;
  greeting: string;
}

// The old academy's seventeen teachers (texts as it had them), keyed by canonical roster id.
const TEACHERS: Record<string, TeacherInfo> = {
  zumbi: {
    tracks: ['backend', 'ia'],
    specialty: 'Detecção de anomalias e análise de dados',
    personality: 'Investigador perspicaz e determinado',
    greeting: 'Ola! Sou Zumbi, especialista em encontrar anomalias. Vamos investigar juntos?',
  },
  anita: {
    tracks: ['backend', 'ia'],
    specialty: 'Análise de padrões e metodologia',
    personality: 'Estrategista corajosa e analitica',
    greeting: 'Bem-vindo! Sou Anita, vou te ensinar a identificar padrões. Preparado?',
  },
  tiradentes: {
    tracks: ['backend', 'devops'],
    specialty: 'Documentacao e relatórios',
    personality: 'Comunicador eloquente e organizado',
    greeting: 'Saudações! Sou Tiradentes, mestre em comunicacao clara. Vamos documentar?',
  },
  senna: {
    tracks: ['backend', 'devops'],
    specialty: 'Performance e otimizacao',
    personality: 'Perfeccionista focado em velocidade',
    greeting: 'E ai! Sou Senna, especialista em performance. Vamos acelerar seu codigo?',
  },
  oscar_niemeyer: {
    tracks: ['backend', 'frontend'],
    specialty: 'Arquitetura de software',
    personality: 'Visionario criativo e elegante',
    greeting: 'Ola! Sou Niemeyer, arquiteto de sistemas. Vamos projetar algo bonito?',
  },
  machado: {
    tracks: ['backend', 'frontend'],
    specialty: 'Comunicacao tecnica e documentacao',
    personality: 'Escritor perspicaz e ironico',
    greeting: 'Prezado aluno! Sou Machado, vou te ensinar a arte da comunicacao tecnica.',
  },
  dandara: {
    tracks: ['frontend'],
    specialty: 'Equidade social e acessibilidade',
    personality: 'Guerreira justa e inclusiva',
    greeting: 'Ola! Sou Dandara, defensora da acessibilidade. Vamos criar para todos?',
  },
  lampiao: {
    tracks: ['backend', 'ia'],
    specialty: 'Análise regional e dados locais',
    personality: 'Astuto conhecedor do territorio',
    greeting: 'Opa! Sou Lampiao, conheco cada canto desses dados. Bora explorar?',
  },
  drummond: {
    tracks: ['frontend'],
    specialty: 'Comunicacao e narrativa de dados',
    personality: 'Poeta sensivel e reflexivo',
    greeting: 'Ola, jovem! Sou Drummond, vou te ajudar a contar histórias com dados.',
  },
  maria_quiteria: {
    tracks: ['backend', 'devops'],
    specialty: 'Seguranca e supervisao',
    personality: 'Vigilante corajosa e protetora',
    greeting: 'Alerta! Sou Maria Quiteria, guardia da seguranca. Vamos proteger o sistema?',
  },
  oxossi: {
    tracks: ['backend', 'ia'],
    specialty: 'Busca e caca de dados',
    personality: 'Cacador preciso e focado',
    greeting: 'Axe! Sou Oxossi, cacador de dados. Vamos encontrar o que procura?',
  },
  nana: {
    tracks: ['backend', 'ia'],
    specialty: 'Memoria e gestao de contexto',
    personality: 'Sabia anciã e paciente',
    greeting: 'Bem-vindo, filho! Sou Nana, guardia da memoria. Vou te guiar com calma.',
  },
  obaluaie: {
    tracks: ['backend', 'ia'],
    specialty: 'Detecção de corrupção',
    personality: 'Justiceiro implacavel',
    greeting: 'Atoto! Sou Obaluaie, detector de corrupção. Vamos purificar os dados?',
  },
  ceuci: {
    tracks: ['backend', 'ia'],
    specialty: 'Predição e ETL',
    personality: 'Visionaria e profetica',
    greeting: 'Saudações! Sou Ceuci, vejo alem dos dados. Vamos prever o futuro juntos?',
  },
  bonifacio: {
    tracks: ['backend'],
    specialty: 'Análise legal e normativa',
    personality: 'Estadista sabio e erudito',
    greeting: 'Ilustre aluno! Sou Bonifacio, especialista em leis. Vamos entender a norma?',
  },
  abaporu: {
    tracks: ['backend', 'ia', 'devops'],
    specialty: 'Orquestração de agentes',
    personality: 'Coordenador estrategico',
    greeting: 'Ola! Sou Abaporu, o orquestrador. Vou te ensinar a coordenar sistemas complexos.',
  },
  santos_dumont: {
    tracks: ['backend', 'frontend', 'ia', 'devops'],
    specialty: 'Educação sobre o sistema Cidadao.AI',
    personality: 'Inventor pioneiro e incentivador',
    greeting:
      'Meu caro amigo! Sou Santos-Dumont, o mineiro Pai da Aviação. Vou te ensinar a pilotar o sistema Cidadao.AI. O que eu fiz, qualquer um pode fazer - vamos construir juntos!',
  },
};

export interface Teacher {
  name: string;
  display_name: string;
  avatar: string;
  specialty: string;
  tracks: Track[];
  personality: string;
  greeting: string;
  is_available: boolean;
}

function toTeacher(id: string): Teacher {
  const agent = getAgent(id);
  const info = TEACHERS[id]!;
  return {
    name: id,
    display_name: agent.name,
    avatar: agent.avatar,
    specialty: info.specialty,
    tracks: info.tracks,
    personality: info.personality,
    greeting: info.greeting,
    is_available: true,
  };
}

const teachers = Object.keys(TEACHERS).map(toTeacher);

export function listTeachers(track?: Track): Teacher[] {
  return track ? teachers.filter((t) => t.tracks.includes(track)) : teachers;
}

/** A teacher by canonical id or any roster alias (case-insensitive), or undefined. */
export function findTeacher(nameOrAlias: string): Teacher | undefined {
  const agent = resolveAgent(nameOrAlias);
  return agent && TEACHERS[agent.id] ? teachers.find((t) => t.name === agent.id) : undefined;
}

export const teacherNames = () => teachers.map((t) => t.name);

export const TRACKS = [
  {
    id: 'backend',
    name: 'Backend',
    description: 'TypeScript, Fastify, PostgreSQL, Redis, Drizzle',
    icon: 'server',
    color: '#3B82F6',
    recommended_agents: ['zumbi', 'anita', 'tiradentes', 'bonifacio'],
  },
  {
    id: 'frontend',
    name: 'Frontend',
    description: 'Next.js 15, React 18, TypeScript, Tailwind CSS',
    icon: 'layout',
    color: '#10B981',
    recommended_agents: ['oscar_niemeyer', 'dandara', 'drummond', 'machado'],
  },
  {
    id: 'ia',
    name: 'IA/ML',
    description: 'LLMs, prompts, agentes, detecção de anomalias',
    icon: 'brain',
    color: '#8B5CF6',
    recommended_agents: ['zumbi', 'oxossi', 'ceuci', 'nana', 'obaluaie'],
  },
  {
    id: 'devops',
    name: 'DevOps',
    description: 'Docker, GitHub Actions, Railway, observabilidade',
    icon: 'settings',
    color: '#F59E0B',
    recommended_agents: ['senna', 'maria_quiteria', 'tiradentes', 'abaporu'],
  },
] as const;

const RANKS = [
  {
    level: 'novato',
    name: 'Novato',
    color: '#6B7280',
    icon: 'seedling',
    perks: ['Acesso as missões easy', 'Canal de duvidas'],
    min_xp: 0,
    max_xp: 99,
  },
  {
    level: 'aprendiz',
    name: 'Aprendiz',
    color: '#10B981',
    icon: 'leaf',
    perks: ['Acesso as missões medium', 'Mentoria mensal'],
    min_xp: 100,
    max_xp: 499,
  },
  {
    level: 'contribuidor',
    name: 'Contribuidor',
    color: '#3B82F6',
    icon: 'star',
    perks: ['Acesso as missões hard', 'Mentoria quinzenal', 'Badge especial'],
    min_xp: 500,
    max_xp: 1999,
  },
  {
    level: 'mentor',
    name: 'Mentor',
    color: '#8B5CF6',
    icon: 'crown',
    perks: ['Pode mentorar novatos', 'Acesso expert', 'Carta de recomendacao'],
    min_xp: 2000,
    max_xp: 4999,
  },
  {
    level: 'arquiteto',
    name: 'Arquiteto',
    color: '#F59E0B',
    icon: 'trophy',
    perks: ['Elegivel para vaga de estagio', 'Coautoria em artigos', 'Mentoria 1:1'],
    min_xp: 5000,
    max_xp: null,
  },
] as const;

export type RankInfo = (typeof RANKS)[number];

export const levelOf = (totalXp: number) => Math.floor(totalXp / 100) + 1;

export function rankOf(totalXp: number): RankInfo {
  let rank: RankInfo = RANKS[0];
  for (const r of RANKS) if (totalXp >= r.min_xp) rank = r;
  return rank;
}

/** Everything `progress` shows, derived from total_xp alone (ACADEMY.md §3). */
export function progressOf(totalXp: number) {
  const level = levelOf(totalXp);
  const rank = rankOf(totalXp);
  return {
    total_xp: totalXp,
    current_level: level,
    current_rank: rank.level,
    xp_to_next_level: level * 100 - totalXp,
    progress_percentage: totalXp % 100,
    rank_info: { ...rank, perks: [...rank.perks] },
  };
}

/** XP per event (ACADEMY.md §5). */
export const XP = {
  conversationStarted: 5,
  conversationMessage: 2,
  conversationCompleted: 20,
  conversationExcellent: 50,
} as const;

/** Badges awarded when total_xp reaches a threshold, checked after every award. */
export const THRESHOLD_BADGES = [
  { code: 'mentor_badge', minXp: 2000 },
  { code: 'architect_badge', minXp: 5000 },
] as const;
