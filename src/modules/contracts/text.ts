// Text keys for comparing contracts: accent-free lowercase words, and a short key for "the same object".

const STOP_WORDS = new Set(
  (
    'a o as os ao aos à às de da do das dos e em no na nos nas num numa para pra por pelo pela pelos pelas ' +
    'com sem sob sobre um uma uns umas que se ou entre ate até seu sua seus suas este esta estes estas ' +
    'esse essa isso tipo item itens lote lotes'
  ).split(' '),
);

// Words that say how something is bought, not what: they would make every contract look alike.
const GENERIC_WORDS = new Set(
  (
    'aquisicao aquisicoes contratacao contratacoes prestacao servico servicos fornecimento fornecimentos ' +
    'empresa empresas especializada especializadas especializado especializados objeto compra compras ' +
    'eventual eventuais futura futuras registro preco precos execucao continuado continuada continuados ' +
    'continuadas comum comuns nao informado informada consta'
  ).split(' '),
);

// Where an objeto stops saying what is bought and starts saying for whom, why or under which process.
const CUT_AT =
  /\s(?:para|destinad\w*|visando|a fim|conforme|no ambito|com vistas|junto|em atendimento|atender|de acordo|processo|referente)\b|[,;:()[\]]|\s[-–—]\s/g;

function foldAccents(s: string): string {
  return s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();
}

/** Lowercase, accents stripped, anything but letters and digits turned into single spaces. */
export function normalizeText(s: string): string {
  return foldAccents(s)
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

/** The significant words of a free text (stop-words dropped), for search. */
export function searchTokens(s: string): string[] {
  return normalizeText(s)
    .split(' ')
    .filter((w) => w.length >= 2 && !STOP_WORDS.has(w));
}

const OBJETO_PREFIX = /^\s*objeto\s*:\s*/i;
const KEY_WORDS = 2;

/** A light Portuguese plural stemmer: "hospitais" → "hospital", "acoes" → "acao", "notebooks" → "notebook". */
export function stemWord(w: string): string {
  if (w.length <= 3) return w;
  if (w.endsWith('oes') || w.endsWith('aes')) return `${w.slice(0, -3)}ao`;
  if (w.endsWith('ais')) return `${w.slice(0, -3)}al`;
  if (w.endsWith('eis') && w.length > 4) return `${w.slice(0, -3)}el`;
  if (w.endsWith('ns')) return `${w.slice(0, -2)}m`;
  if (w.endsWith('s') && !w.endsWith('ss')) return w.slice(0, -1);
  return w;
}

/**
 * A key for "contracts that buy the same thing": the first two significant words of what is
 * bought, e.g. "Aquisição de material de escritório para a SR/PF" → "material escritorio"; '' when
 * the text names nothing specific.
 */
export function objetoKey(objeto: string): string {
  // Only the head of an objeto says what is bought; the rest is process numbers and destinations.
  const segments = foldAccents(objeto.slice(0, 160).replace(OBJETO_PREFIX, '')).split(CUT_AT);
  // "Registro de preços para eventual aquisição de notebooks": the object may follow a connector.
  for (const segment of segments) {
    const significant = segment
      .split(/[^a-z0-9]+/)
      .filter((w) => w.length >= 2 && !STOP_WORDS.has(w) && !GENERIC_WORDS.has(w) && !/^\d+$/.test(w));
    if (significant.length > 0) return significant.slice(0, KEY_WORDS).map(stemWord).join(' ');
  }
  // Nothing but generic words ("Serviços", "Objeto não informado"): not comparable to anything.
  return '';
}

export type ModalidadeKind = 'competitive' | 'dispensa' | 'inexigibilidade';

/** Direct contracting (no bidding) under Lei 14.133 arts. 74–75, from the Portal's modalidade names. */
export function modalidadeKind(modalidade: string): ModalidadeKind {
  const m = normalizeText(modalidade);
  if (m.includes('inexig')) return 'inexigibilidade';
  if (m.includes('dispensa') || m.includes('dispensavel')) return 'dispensa';
  return 'competitive';
}
