// Federal agencies people name in questions: full name, acronyms, the area word ("saúde") and SIAFI code.
import { normalizeText } from '../contracts/text.js';

export interface KnownAgency {
  name: string;
  /** SIAFI órgão code, when it is certain (the Portal's `codigoOrgao`). */
  code?: string;
  /** Written as people write them; matched case-sensitively as whole words ("MEC", "ICMBio"). */
  acronyms?: string[];
  /** Lowercase names matched as whole words, accents ignored ("fiocruz", "exercito"). */
  aliases?: string[];
  /** The area word that stands for the ministry after "da/na/do/no" ("contratos da saúde"). */
  area?: string[];
}

export const KNOWN_AGENCIES: readonly KnownAgency[] = [
  { name: 'Ministério da Saúde', code: '36000', area: ['saude'] },
  { name: 'Ministério da Educação', code: '26000', acronyms: ['MEC'], area: ['educacao'] },
  {
    name: 'Ministério da Justiça e Segurança Pública',
    code: '30000',
    acronyms: ['MJSP', 'MJ'],
    area: ['justica', 'seguranca publica'],
  },
  { name: 'Ministério da Fazenda', code: '25000', area: ['fazenda'] },
  {
    name: 'Ministério da Agricultura e Pecuária',
    code: '22000',
    acronyms: ['MAPA'],
    area: ['agricultura', 'pecuaria'],
  },
  { name: 'Ministério dos Transportes', code: '39000', area: ['transportes'] },
  { name: 'Ministério de Minas e Energia', code: '32000', acronyms: ['MME'], area: ['minas e energia'] },
  {
    name: 'Ministério da Ciência, Tecnologia e Inovação',
    code: '24000',
    acronyms: ['MCTI'],
    area: ['ciencia e tecnologia', 'ciencia'],
  },
  {
    name: 'Ministério do Meio Ambiente e Mudança do Clima',
    code: '44000',
    acronyms: ['MMA'],
    area: ['meio ambiente'],
  },
  {
    name: 'Ministério do Desenvolvimento e Assistência Social, Família e Combate à Fome',
    code: '55000',
    acronyms: ['MDS'],
    area: ['assistencia social', 'desenvolvimento social'],
  },
  { name: 'Presidência da República', code: '20000', aliases: ['presidencia', 'planalto'] },
  { name: 'Ministério da Defesa', code: '52000', area: ['defesa'] },
  { name: 'Comando do Exército', code: '52121', aliases: ['exercito', 'exercito brasileiro'] },
  { name: 'Fundação Oswaldo Cruz', code: '36201', acronyms: ['FIOCRUZ', 'Fiocruz'], aliases: ['fiocruz'] },
  {
    name: 'Instituto Chico Mendes de Conservação da Biodiversidade',
    code: '44207',
    acronyms: ['ICMBio', 'ICMBIO'],
    aliases: ['icmbio'],
  },
  { name: 'Universidade Federal de Minas Gerais', code: '26238', acronyms: ['UFMG'] },
  { name: 'Universidade Federal da Bahia', code: '26232', acronyms: ['UFBA'] },
  { name: 'Instituto Federal do Piauí', code: '26431', acronyms: ['IFPI'] },
  { name: 'Ministério das Relações Exteriores', acronyms: ['MRE', 'Itamaraty'], aliases: ['itamaraty'] },
  { name: 'Ministério da Cultura', area: ['cultura'] },
  { name: 'Ministério do Turismo', area: ['turismo'] },
  { name: 'Ministério do Esporte', area: ['esporte'] },
  { name: 'Ministério das Comunicações', area: ['comunicacoes'] },
  { name: 'Ministério das Cidades', area: ['cidades'] },
  { name: 'Ministério da Previdência Social', area: ['previdencia'] },
  { name: 'Ministério do Trabalho e Emprego', acronyms: ['MTE'], area: ['trabalho'] },
  { name: 'Instituto Nacional do Seguro Social', acronyms: ['INSS'] },
  {
    name: 'Instituto Brasileiro do Meio Ambiente e dos Recursos Naturais Renováveis',
    acronyms: ['IBAMA', 'Ibama'],
    aliases: ['ibama'],
  },
  { name: 'Agência Nacional de Vigilância Sanitária', acronyms: ['ANVISA', 'Anvisa'], aliases: ['anvisa'] },
  { name: 'Fundação Nacional de Saúde', acronyms: ['FUNASA', 'Funasa'], aliases: ['funasa'] },
  { name: 'Polícia Federal', acronyms: ['PF'], aliases: ['policia federal'] },
  { name: 'Polícia Rodoviária Federal', acronyms: ['PRF'], aliases: ['policia rodoviaria federal'] },
];

export const agencyKey = (name: string) => normalizeText(name);

const BY_CODE = new Map(KNOWN_AGENCIES.filter((a) => a.code).map((a) => [a.code!, a]));

export function knownAgencyByCode(code: string): KnownAgency | undefined {
  return BY_CODE.get(code);
}
