// Query understanding, the one place chat and investigations read a Portuguese question into a selection.
import { searchTokens } from '../investigations/detectors/text.js';
import { readAgency, readSupplier } from './names.js';
import { AMOUNT, amountOf, brDateToIso, isoOf, MONTHS, monthEnd, monthStart } from './numbers.js';
import type { Selection } from './selection.js';

export interface UnderstandOptions {
  /** "Today", for "este ano", "últimos 6 meses". */
  now?: Date;
}

// Words that say what the asker wants done, not which contracts: never object keywords.
const NOISE = new Set(
  (
    'contrato contratos contratacao contratacoes licitacao licitacoes compra compras gasto gastos despesa despesas ' +
    'investigar investigue investigacao investigacoes investiga analisar analise analisa analisem verificar verifique ' +
    'mostre mostrar mostra liste listar lista quero queria gostaria ver veja busque buscar busca procure procurar ' +
    'encontre encontrar abra abrir abre inicie iniciar comece comecar faca fazer rode rodar lance lancar completa ' +
    'completo nova novo governo federal publico publicos publica publicas dado dados valor valores total ' +
    'suspeito suspeitos suspeita suspeitas suspeitosos suspeitosas anomalia anomalias irregularidade irregularidades ' +
    'problema problemas estranho estranhos fraude fraudes indicio indicios risco riscos ' +
    'quais qual quanto quantos quantas existem existe ha tem teve houve foram foi sao ser esta estao feitos feito ' +
    'feitas feita firmados firmado assinados assinado celebrados celebrado me nos eu voce pode poderia favor por ' +
    'maiores maior principais principal todos todas todo toda ultimos ultimas ultimo ultima recentes recente ' +
    'orgao orgaos fornecedor fornecedores fornecedora empresa empresas ano anos mes meses periodo dia dias ' +
    'reais real acima abaixo mais menos superior superiores inferior inferiores menor menores desde apos depois antes ' +
    'ministerio pasta area setor sobre relacionados relacionadas referente envolvendo ligados aqui ai la ' +
    'cidadao brasil brasileiro cnpj cpf numero codigo ganhou ganharam venceu venceram recebeu receberam assinou ' +
    'assinaram fechou fez fizeram pagou pagaram gastou gastaram comprou compraram contratou contrataram ' +
    'federais amostra amostras enviada enviadas enviado enviados csv planilha arquivo upload exemplo'
  ).split(' '),
);

/** Accent-free lowercase with the same length as the NFC original, so spans line up. */
function fold(s: string): string {
  const out = s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();
  return out.length === s.length ? out : s.toLowerCase();
}

export function understandQuery(text: string, opts: UnderstandOptions = {}): Selection {
  const orig = text.normalize('NFC').slice(0, 2000);
  let low = fold(orig);
  const sel: Selection = { objectTerms: [], problems: [] };
  const now = opts.now ?? new Date();
  const froms: string[] = [];
  const tos: string[] = [];

  // Consumes every match of `re` in `low` (blanking it), calling `on` for each.
  const take = (re: RegExp, on: (m: RegExpExecArray) => void) => {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
    low = low.replace(g, (...args) => {
      const groups = args.slice(0, -2) as string[];
      const m = Object.assign([...groups], { index: args.at(-2) as number, input: low }) as RegExpExecArray;
      on(m);
      return ' '.repeat(groups[0]!.length);
    });
  };
  const range = (from?: string, to?: string) => {
    if (from) froms.push(from);
    if (to) tos.push(to);
  };

  // 1. CNPJ (before any number is read as something else).
  take(/\b\d{2}\.?\d{3}\.?\d{3}\/?\d{4}-?\d{2}\b/, (m) => {
    sel.supplier = { ...sel.supplier, cnpj: m[0] };
  });

  // 2. Full dates, with the words around them.
  const D = String.raw`(\d{1,2}\/\d{1,2}\/\d{4})`;
  const day = (s: string) => {
    const iso = brDateToIso(s);
    if (!iso) sel.problems.push(`"${s}" não é uma data válida (use dd/mm/aaaa)`);
    return iso ?? undefined;
  };
  take(new RegExp(String.raw`\b(?:entre|de)\s+(?:os dias\s+|o dia\s+)?${D}\s+(?:e|a|ate)\s+${D}`), (m) =>
    range(day(m[1]!), day(m[2]!)),
  );
  take(new RegExp(String.raw`\b(?:desde|a partir de|apos|depois de)\s+(?:o dia\s+)?${D}`), (m) =>
    range(day(m[1]!)),
  );
  take(new RegExp(String.raw`\b(?:ate|antes de)\s+(?:o dia\s+)?${D}`), (m) => range(undefined, day(m[1]!)));
  take(new RegExp(D), (m) => {
    const d = day(m[1]!);
    range(d, d);
  });

  // 3. Amounts ("acima de R$ 1 milhão", "entre 100 mil e 500 mil").
  take(new RegExp(String.raw`\bentre\s+${AMOUNT}\s+e\s+${AMOUNT}`), (m) => {
    sel.minValue = amountOf(m, 1);
    sel.maxValue = amountOf(m, 6);
  });
  const MIN = `(?:acima de|mais de|maior(?:es)? (?:do )?que|superior(?:es)? a|a partir de|no minimo|pelo menos|>=?)`;
  const MAX = `(?:abaixo de|menos de|ate|inferior(?:es)? a|menor(?:es)? (?:do )?que|no maximo|<=?)`;
  take(new RegExp(String.raw`${MIN}\s*${AMOUNT}`), (m) => {
    sel.minValue = amountOf(m, 1);
  });
  take(new RegExp(String.raw`${MAX}\s*${AMOUNT}`), (m) => {
    sel.maxValue = amountOf(m, 1);
  });
  take(new RegExp(AMOUNT), () => {});

  // 4. Months, semesters and relative periods.
  const MONTH = `(${MONTHS.join('|')})`;
  const monthNo = (name: string) => MONTHS.indexOf(name) + 1;
  take(
    new RegExp(
      String.raw`\b(?:de|entre)\s+${MONTH}(?:\s+de\s+(\d{4}))?\s+(?:a|e|ate)\s+${MONTH}\s+de\s+(\d{4})`,
    ),
    (m) => {
      const y2 = Number(m[4]);
      const y1 = m[2] ? Number(m[2]) : y2;
      range(monthStart(y1, monthNo(m[1]!)), monthEnd(y2, monthNo(m[3]!)));
    },
  );
  take(new RegExp(String.raw`\b${MONTH}\s+(?:de\s+)?(\d{4})`), (m) => {
    range(monthStart(Number(m[2]), monthNo(m[1]!)), monthEnd(Number(m[2]), monthNo(m[1]!)));
  });
  take(/\b(primeiro|1o|segundo|2o)\s+semestre\s+(?:de\s+)?(\d{4})/, (m) => {
    const y = Number(m[2]);
    const first = m[1] === 'primeiro' || m[1] === '1o';
    range(first ? `${y}-01-01` : `${y}-07-01`, first ? `${y}-06-30` : `${y}-12-31`);
  });
  const year = now.getUTCFullYear();
  take(/\b(?:neste|nesse|este|esse|deste|desse|no)\s+ano(?:\s+atual)?\b|\bano atual\b/, () =>
    range(`${year}-01-01`, isoOf(now)),
  );
  take(/\b(?:no\s+|do\s+)?ano passado\b/, () => range(`${year - 1}-01-01`, `${year - 1}-12-31`));
  take(/\b(?:nos\s+|dos\s+)?ultim[oa]s?\s+(\d+)?\s*(dias?|mes|meses|anos?)\b/, (m) => {
    const n = Number(m[1] ?? 1);
    const d = new Date(now);
    if (m[2]!.startsWith('dia')) d.setUTCDate(d.getUTCDate() - n);
    else if (m[2]!.startsWith('mes')) d.setUTCMonth(d.getUTCMonth() - n);
    else d.setUTCFullYear(d.getUTCFullYear() - n);
    range(isoOf(d), isoOf(now));
  });

  // 5. Years.
  const Y = String.raw`((?:19|20)\d{2})`;
  take(new RegExp(String.raw`\b(?:entre|de)\s+${Y}\s+(?:e|a|ate)\s+${Y}\b`), (m) =>
    range(`${m[1]}-01-01`, `${m[2]}-12-31`),
  );
  take(new RegExp(String.raw`\b(?:desde|a partir de)\s+(?:o ano de\s+)?${Y}\b`), (m) =>
    range(`${m[1]}-01-01`),
  );
  take(new RegExp(String.raw`\b(?:depois de|apos)\s+${Y}\b`), (m) => range(`${Number(m[1]) + 1}-01-01`));
  take(new RegExp(String.raw`\bantes de\s+${Y}\b`), (m) => range(undefined, `${Number(m[1]) - 1}-12-31`));
  take(new RegExp(String.raw`\bate\s+${Y}\b`), (m) => range(undefined, `${m[1]}-12-31`));
  const years: number[] = [];
  take(new RegExp(String.raw`\b${Y}\b`), (m) => years.push(Number(m[1])));
  if (years.length > 0) range(`${Math.min(...years)}-01-01`, `${Math.max(...years)}-12-31`);

  // 6. Modalidade.
  const modalidades = new Set<string>();
  take(/\b(?:sem licitacao|contratac(?:ao|oes) diretas?|compras? diretas?)\b/, () => {
    modalidades.add('dispensa');
    modalidades.add('inexigibilidade');
  });
  take(/\bdispensas?(?: de licitacao)?\b/, () => modalidades.add('dispensa'));
  take(/\binexigibilidade(?: de licitacao)?\b|\binexigiveis\b|\binexigivel\b/, () =>
    modalidades.add('inexigibilidade'),
  );
  take(/\bpregao(?: eletronico)?\b|\bpregoes\b/, () => modalidades.add('pregao'));
  take(/\bconcorrencias?\b/, () => modalidades.add('concorrencia'));
  if (modalidades.size > 0) sel.modalidades = [...modalidades];

  // 7. Supplier by name: a company suffix, or "empresa/fornecedor" followed by a capitalised name.
  readSupplier(orig, low, sel, (start, end) => {
    low = low.slice(0, start) + ' '.repeat(end - start) + low.slice(end);
  });

  // 8. Agency: code, known names, acronyms, area words, then any "Ministério/Universidade … " name.
  readAgency(orig, low, sel, (start, end) => {
    low = low.slice(0, start) + ' '.repeat(end - start) + low.slice(end);
  });

  if (froms.length > 0) sel.from = froms.sort().at(-1);
  if (tos.length > 0) sel.to = tos.sort()[0];

  // 9. What is left, minus question and action words, says what was bought.
  sel.objectTerms = [
    ...new Set(searchTokens(low).filter((w) => !NOISE.has(w) && !/^\d+$/.test(w) && w.length >= 3)),
  ];
  return sel;
}

export { nameWords } from './names.js';
export type { Selection } from './selection.js';
