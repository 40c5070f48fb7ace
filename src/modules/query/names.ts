// Supplier and agency names inside a question: company suffixes, capitalised runs, known agencies, "Ministério …".
import { normalizeText } from '../investigations/detectors/text.js';
import { agencyKey, KNOWN_AGENCIES, knownAgencyByCode } from './agencies.js';
import type { Selection } from './selection.js';

const wordRe = (words: string) => new RegExp(`\\b${words.split(' ').join('[^a-z0-9]+')}\\b`);
const COMPANY_SUFFIX = /^(ltda\.?|s\.?\/?a\.?|me|epp|eireli|mei)$/i;
const CONNECTORS = new Set(['de', 'da', 'do', 'das', 'dos', 'e', '&']);
export type Blank = (start: number, end: number) => void;

export function readSupplier(orig: string, low: string, sel: Selection, blank: Blank): void {
  // "empresa Capital Alimentos Ltda", "fornecedor Aurora Tecnologia", "pela Nova Era Consultoria EPP".
  const intro = /\b(?:fornecedora?|empresa|contratada|firma)\s+/g;
  for (const m of low.matchAll(intro)) {
    const start = m.index + m[0].length;
    const name = capitalisedRun(orig, start);
    if (name) {
      sel.supplier = { ...sel.supplier, name: name.text };
      blank(m.index, name.end);
      return;
    }
  }
  // A name ending in Ltda / S.A. / ME / EPP anywhere.
  const suffix =
    /(?:^|\s)((?:[A-ZÀ-Ý][\p{L}'-]*\s+(?:(?:de|da|do|das|dos|e|&)\s+)?)+(?:Ltda\.?|S\.\s?A\.?|SA|ME|EPP|Eireli))(?=$|[\s,.;!?])/u;
  const s = suffix.exec(orig);
  if (s) {
    const start = s.index + s[0].indexOf(s[1]!);
    sel.supplier = { ...sel.supplier, name: s[1]!.trim() };
    blank(start, start + s[1]!.length);
  }
}

/** The run of capitalised words (with de/da/do/e inside and a company suffix) starting at `from`. */
function capitalisedRun(orig: string, from: number): { text: string; end: number } | null {
  const re = /\S+/gy;
  re.lastIndex = from;
  const words: string[] = [];
  for (let m = re.exec(orig); m; m = re.exec(orig)) {
    const w = m[0].replace(/[,;:!?]+$/, '');
    const trailing = w.length < m[0].length;
    const upper = /^[A-ZÀ-Ý0-9]/.test(w);
    if (upper || COMPANY_SUFFIX.test(w) || (words.length > 0 && CONNECTORS.has(w.toLowerCase()))) {
      words.push(w);
      if (trailing) break;
      re.lastIndex = m.index + m[0].length;
      while (orig[re.lastIndex] === ' ') re.lastIndex++;
      continue;
    }
    break;
  }
  while (words.length > 0 && CONNECTORS.has(words.at(-1)!.toLowerCase())) words.pop();
  if (words.length === 0) return null;
  const text = words.join(' ');
  return { text, end: from + orig.slice(from).indexOf(words.at(-1)!) + words.at(-1)!.length };
}

const AGENCY_HEAD =
  /\b(ministerio|universidade|instituto|fundacao|agencia|secretaria|superintendencia|departamento|hospital|comando|tribunal|conselho|banco|policia|companhia|empresa brasileira|autarquia|fundo|controladoria|advocacia|procuradoria|caixa|camara|senado)\s+/g;
const AGENCY_STOP = new Set(
  'em com entre acima abaixo desde ate que sobre para por pela pelo no na nos nas foram sao com ano anos contratos contrato e ou'.split(
    ' ',
  ),
);

export function readAgency(orig: string, low: string, sel: Selection, blank: Blank): void {
  const set = (mention: string, name?: string, code?: string) => {
    sel.agency = { mention, ...(name ? { name } : {}), ...(code ? { code } : {}) };
  };
  // A code said as a code: "órgão 36000", "código 26000", "codigoOrgao=36000".
  const code =
    /\b(?:orgao|codigo(?:\s+do\s+orgao)?|codigoorgao|siafi)\s*[:=]?\s*(?:n[o.]?\s*)?(\d{5})\b/.exec(low);
  if (code) {
    const known = knownAgencyByCode(code[1]!);
    set(code[1]!, known?.name, code[1]!);
    blank(code.index, code.index + code[0].length);
    return;
  }
  for (const a of KNOWN_AGENCIES) {
    const full = wordRe(agencyKey(a.name)).exec(low);
    if (full) {
      set(orig.slice(full.index, full.index + full[0].length), a.name, a.code);
      blank(full.index, full.index + full[0].length);
      return;
    }
  }
  for (const a of KNOWN_AGENCIES) {
    for (const acr of a.acronyms ?? []) {
      const m = new RegExp(`(?<![\\p{L}\\d])${acr}(?![\\p{L}\\d])`, 'u').exec(orig);
      if (m) {
        set(acr, a.name, a.code);
        blank(m.index, m.index + acr.length);
        return;
      }
    }
    for (const alias of a.aliases ?? []) {
      const m = wordRe(alias).exec(low);
      if (m) {
        set(orig.slice(m.index, m.index + m[0].length), a.name, a.code);
        blank(m.index, m.index + m[0].length);
        return;
      }
    }
  }
  // "contratos da saúde", "gastos na educação", "compras de saúde": the ministry of that area.
  for (const a of KNOWN_AGENCIES) {
    for (const area of a.area ?? []) {
      const words = area.split(' ').join('\\s+');
      const re = new RegExp(
        `\\b(?:(?:ministerio|pasta|area)\\s+(?:d[aoe]s?|de)\\s+|(?:da|na|do|no|pela|pelo|para a|para o)\\s+|(?:contratos?|compras?|gastos?|despesas?|licitac\\w*)\\s+(?:de|da|do|na|no)\\s+)(${words})\\b`,
      );
      const m = re.exec(low);
      if (m) {
        const start = m.index + m[0].length - m[1]!.length;
        set(orig.slice(start, m.index + m[0].length), a.name, a.code);
        blank(m.index, m.index + m[0].length);
        return;
      }
    }
  }
  // Any other agency named by its kind: "Universidade Federal de Pernambuco", "Ministério X".
  for (const m of low.matchAll(AGENCY_HEAD)) {
    const words = [m[1]!];
    const re = /[a-z0-9]+/gy;
    let end = m.index + m[0].length;
    re.lastIndex = end;
    for (let w = re.exec(low); w && words.length < 8; w = re.exec(low)) {
      if (AGENCY_STOP.has(w[0]) && !(w[0] === 'e' && words.length > 1)) break;
      words.push(w[0]);
      end = w.index + w[0].length;
      while (low[re.lastIndex] === ' ') re.lastIndex++;
    }
    while (words.length > 1 && CONNECTORS.has(words.at(-1)!)) words.pop();
    if (words.filter((w) => !CONNECTORS.has(w)).length >= 2) {
      set(orig.slice(m.index, end).trim());
      blank(m.index, end);
      return;
    }
  }
}

/** The accent-free words of an agency or supplier name, for "every word appears" matching. */
export function nameWords(name: string): string[] {
  return normalizeText(name)
    .split(' ')
    .filter((w) => w.length >= 2 && !CONNECTORS.has(w));
}
