// CSV uploads, streamed: our column names or the Portal da Transparência's export, any charset, errors by row and column.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CsvError as ParseError, parse } from 'csv-parse';
import { unstorable } from '../../../lib/text.js';
import { normalizeText } from '../detectors/text.js';
import { type Contract, canonicalCnpj, contractSchema } from '../types.js';
import { decodeStream } from './decode.js';
import { parseDate, parseMoney } from './values.js';

type Field = keyof Contract;

/**
 * Accepted column names per field, accents, case and punctuation ignored, the first present wins.
 * Our names (API.md §6) and the Portal da Transparência's contract export ("Número do Contrato";
 * "Objeto";…;"Nome Órgão";"Código Órgão";…;"Valor Inicial Compra";"Valor Final Compra").
 */
export const CSV_COLUMNS: Record<Field, string[]> = {
  id: ['id', 'id contrato', 'identificador'],
  numero: ['numero', 'numero do contrato', 'numero contrato'],
  objeto: ['objeto', 'objeto do contrato'],
  orgao: ['orgao', 'nome orgao', 'nome do orgao', 'nome orgao superior', 'orgao superior'],
  orgao_codigo: ['orgao codigo', 'codigo orgao', 'codigo do orgao', 'codigo orgao superior'],
  fornecedor: [
    'fornecedor',
    'nome fornecedor',
    'nome contratado',
    'nome do contratado',
    'contratado',
    'razao social',
  ],
  cnpj_fornecedor: [
    'cnpj fornecedor',
    'cnpj',
    'cnpj contratado',
    'cpf cnpj contratado',
    'cnpj cpf fornecedor',
    'cpf cnpj',
    'codigo contratado',
  ],
  valor_inicial: ['valor inicial', 'valor inicial compra', 'valor contratado', 'valor'],
  valor_final: ['valor final', 'valor final compra', 'valor atual'],
  data_assinatura: [
    'data assinatura',
    'data assinatura contrato',
    'data de assinatura',
    'data da assinatura',
    'data inicio vigencia',
  ],
  modalidade: ['modalidade', 'modalidade compra', 'modalidade da compra', 'modalidade licitacao'],
  situacao: ['situacao', 'situacao contrato', 'situacao do contrato'],
};

const REQUIRED: Field[] = [
  'objeto',
  'orgao',
  'orgao_codigo',
  'fornecedor',
  'cnpj_fornecedor',
  'valor_inicial',
  'data_assinatura',
  'modalidade',
];

export interface CsvError {
  /** 1-based line of the file where the record starts (the header is line 1). */
  line: number;
  /** The column as written in the file's header, when one column is at fault. */
  column?: string;
  message: string;
}

export interface CsvOptions {
  /** Declared charset (Content-Type); undefined → detected (UTF-8 or Windows-1252). */
  charset?: string;
  /** More contracts than this is an error (and reading stops). */
  maxContracts?: number;
  /** Reading stops after this many errors. Default 20. */
  maxErrors?: number;
}

export interface CsvResult {
  contracts: Contract[];
  errors: CsvError[];
}

const DATE_FORMAT = 'dd/mm/yyyy (or yyyy-mm-dd)';
const MONEY_FORMAT = '1.234,56 or 1234.56';

/** The delimiter of a header line: the most frequent of ";", "," and tab outside quotes. */
function detectDelimiter(line: string): string {
  const counts = new Map([
    [';', 0],
    [',', 0],
    ['\t', 0],
  ]);
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && counts.has(ch)) counts.set(ch, counts.get(ch)! + 1);
  }
  const [best] = [...counts].sort((a, b) => b[1] - a[1]);
  return best![1] > 0 ? best![0] : ',';
}

class Stop extends Error {}

/** Maps a header row onto fields; an error names what is missing or repeated. */
function mapHeader(header: string[]): { index: Map<Field, number>; error?: string } {
  const keys = header.map((h) => normalizeText(h.replace(/_/g, ' ')));
  const index = new Map<Field, number>();
  for (const [field, names] of Object.entries(CSV_COLUMNS) as Array<[Field, string[]]>) {
    for (const name of names) {
      const i = keys.indexOf(name);
      if (i >= 0) {
        index.set(field, i);
        break;
      }
    }
  }
  const used = [...index.values()];
  const repeated = header.filter((_, i) => used.includes(i) && keys.indexOf(keys[i]!) !== i);
  const missing = REQUIRED.filter((f) => !index.has(f));
  if (missing.length === 0 && repeated.length === 0) return { index };
  const problems = [
    missing.length > 0
      ? `missing column(s): ${missing.map((f) => `${f} (accepted: ${CSV_COLUMNS[f].join(' | ')})`).join('; ')}`
      : '',
    repeated.length > 0 ? `repeated column(s): ${repeated.join(', ')}` : '',
  ].filter(Boolean);
  return { index, error: `${problems.join('; ')} (header: ${header.join(', ')})` };
}

function parseErrorMessage(err: ParseError): string {
  if (err.code === 'CSV_QUOTE_NOT_CLOSED') return 'a quoted field is never closed';
  if (err.code === 'CSV_INVALID_CLOSING_QUOTE' || err.code === 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE')
    return 'text after a closing quote (like "a"b): quote the whole field and double the quotes inside it';
  if (err.code === 'INVALID_OPENING_QUOTE')
    return 'a quote inside an unquoted field: quote the whole field and double the quotes inside it';
  return `the file is not valid CSV (${err.code})`;
}

/** Reads a CSV upload (bytes or text) into contracts; nothing is kept from a file with errors. */
export async function parseContractsCsv(
  input: string | Buffer | AsyncIterable<Buffer | string>,
  opts: CsvOptions = {},
): Promise<CsvResult> {
  const source: AsyncIterable<Buffer | string> =
    typeof input === 'string' || Buffer.isBuffer(input) ? Readable.from([Buffer.from(input)]) : input;
  const maxErrors = opts.maxErrors ?? 20;
  const maxContracts = opts.maxContracts ?? Number.POSITIVE_INFINITY;
  const contracts: Contract[] = [];
  const errors: CsvError[] = [];
  const firstLineOfId = new Map<string, number>();
  const report = (e: CsvError) => {
    errors.push(e);
    if (errors.length >= maxErrors) throw new Stop();
  };

  // The delimiter is chosen from the header line: peek at the decoded text before parsing.
  const chunks = decodeStream(source, opts.charset);
  let pending = '';
  let ended = false;
  while (!/\r?\n/.test(pending) && pending.length < 1 << 20) {
    const r = await chunks.next();
    if (r.done) {
      ended = true;
      break;
    }
    pending += r.value;
  }
  const delimiter = detectDelimiter(pending.split(/\r?\n/, 1)[0] ?? '');
  async function* text() {
    if (pending) yield pending;
    if (!ended) yield* chunks;
  }

  let header: string[] | null = null;
  let index = new Map<Field, number>();
  let nextLine = 1;
  const onRecord = (fields: string[], endLine: number) => {
    const line = nextLine;
    nextLine = endLine + 1;
    if (header === null) {
      if (fields.every((f) => f.trim() === '')) return;
      header = fields.map((h) => h.trim());
      const mapped = mapHeader(header);
      if (mapped.error) {
        report({ line, message: mapped.error });
        throw new Stop();
      }
      index = mapped.index;
      return;
    }
    if (fields.every((f) => f.trim() === '')) return;
    if (fields.length !== header.length) {
      report({ line, message: `expected ${header.length} fields, found ${fields.length}` });
      return;
    }
    const row = rowToContract(fields, header, index, line);
    if ('errors' in row) {
      for (const e of row.errors) report(e);
      return;
    }
    const first = firstLineOfId.get(row.contract.id);
    if (first !== undefined) {
      report({
        line,
        column: columnName(header, index, 'id'),
        message: `"${row.contract.id}" repeats the id of line ${first}`,
      });
      return;
    }
    firstLineOfId.set(row.contract.id, line);
    if (contracts.length >= maxContracts) {
      report({ line, message: `the file holds more than ${maxContracts} contracts` });
      throw new Stop();
    }
    contracts.push(row.contract);
  };

  // Rows are handled inside csv-parse's on_record, in order, so the rows before a syntax error are reported too.
  const parser = parse({
    delimiter,
    relax_column_count: true,
    skip_empty_lines: false,
    on_record: (record: string[], context: { lines: number }) => {
      onRecord(record, context.lines);
      return null;
    },
  });
  try {
    await pipeline(Readable.from(text()), parser, async (rows: AsyncIterable<unknown>) => {
      for await (const _ of rows) {
        // on_record keeps nothing: this only drains the parser.
      }
    });
  } catch (err) {
    const cause = err instanceof ParseError || err instanceof Stop ? err : (err as { cause?: unknown }).cause;
    if (cause instanceof ParseError) {
      const at = (cause as { lines?: unknown }).lines;
      errors.push({ line: typeof at === 'number' ? at : nextLine, message: parseErrorMessage(cause) });
    } else if (!(err instanceof Stop) && !(cause instanceof Stop)) throw err;
  }
  if (header === null && errors.length === 0)
    errors.push({ line: 1, message: 'the file is empty or has no header row' });
  return { contracts: errors.length > 0 ? [] : contracts, errors };
}

function columnName(header: string[], index: Map<Field, number>, field: Field): string {
  const i = index.get(field);
  return i === undefined ? field : header[i]!;
}

// The limits of contractSchema (types.ts), checked inline for the common, valid row: zod per row was
// a third of the parse time of a 100,000-row file. Any doubt and the row goes through zod for the words.
const MAX_LENGTH: ReadonlyArray<readonly [Field, number, 'optional'?]> = [
  ['id', 128],
  ['numero', 200, 'optional'],
  ['objeto', 5000],
  ['orgao', 500],
  ['orgao_codigo', 64],
  ['fornecedor', 500],
  ['cnpj_fornecedor', 32],
  ['modalidade', 200],
  ['situacao', 200, 'optional'],
];
const MAX_MONEY = 1e15;

/** One data row as a Contract, or the errors naming its columns. */
function rowToContract(
  fields: string[],
  header: string[],
  index: Map<Field, number>,
  line: number,
): { contract: Contract } | { errors: CsvError[] } {
  const errors: CsvError[] = [];
  const fail = (f: Field, message: string) =>
    errors.push({ line, column: columnName(header, index, f), message });
  const cell = (f: Field) => {
    const i = index.get(f);
    const v = i === undefined ? '' : fields[i]!.trim();
    if (v === '') return undefined;
    // Postgres text cannot hold what lib/text.ts refuses (NUL): a 422 naming the cell, never a 500 later.
    const why = unstorable(v);
    if (why) {
      fail(f, why);
      return undefined;
    }
    return v;
  };
  const money = (f: Field) => {
    const v = cell(f);
    if (v === undefined) return undefined;
    const n = parseMoney(v);
    if (n === undefined) fail(f, `"${v}" is not a value in reais; expected ${MONEY_FORMAT}`);
    return n;
  };
  const dateText = cell('data_assinatura');
  let date: string | undefined;
  if (dateText !== undefined) {
    date = parseDate(dateText) ?? undefined;
    if (date === undefined) fail('data_assinatura', `"${dateText}" is not a date; expected ${DATE_FORMAT}`);
  }
  const candidate = {
    // Spreadsheets rarely carry an id; the line number is stable and lets a reader find the row.
    id: cell('id') ?? `linha-${line}`,
    numero: cell('numero') ?? null,
    objeto: cell('objeto'),
    orgao: cell('orgao'),
    orgao_codigo: cell('orgao_codigo'),
    fornecedor: cell('fornecedor'),
    cnpj_fornecedor: cell('cnpj_fornecedor'),
    valor_inicial: money('valor_inicial'),
    valor_final: money('valor_final'),
    data_assinatura: date ?? '',
    modalidade: cell('modalidade'),
    situacao: cell('situacao') ?? null,
  };
  if (errors.length === 0) {
    const fast = plainContract(candidate);
    if (fast) return { contract: fast };
  }
  const parsed = contractSchema.safeParse(candidate);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const f = String(issue.path[0] ?? '') as Field;
      // A bad number or date was already reported in words; zod's "expected number" would repeat it.
      if (errors.some((e) => e.column === columnName(header, index, f))) continue;
      const message =
        candidate[f as keyof typeof candidate] == null || candidate[f as keyof typeof candidate] === ''
          ? 'is empty'
          : issue.message;
      fail(f, message);
    }
  }
  return errors.length > 0 || !parsed.success ? { errors } : { contract: parsed.data };
}

type Candidate = { [K in keyof Contract]: Contract[K] | undefined };

/** The contract when every cell is within contractSchema's limits (cells are trimmed already); else null. */
function plainContract(c: Candidate): Contract | null {
  for (const [f, max, optional] of MAX_LENGTH) {
    const v = c[f];
    if (v === undefined || v === null) {
      if (optional) continue;
      return null;
    }
    if (typeof v === 'string' && v.length > max) return null;
  }
  const vi = c.valor_inicial;
  const vf = c.valor_final ?? vi;
  if (vi === undefined || vf === undefined || !(vi >= 0 && vi <= MAX_MONEY && vf >= 0 && vf <= MAX_MONEY))
    return null;
  if (!c.data_assinatura) return null;
  return {
    id: c.id!,
    numero: c.numero ?? null,
    objeto: c.objeto!,
    orgao: c.orgao!,
    orgao_codigo: c.orgao_codigo!,
    fornecedor: c.fornecedor!,
    cnpj_fornecedor: canonicalCnpj(c.cnpj_fornecedor!),
    valor_inicial: vi,
    valor_final: vf,
    data_assinatura: c.data_assinatura,
    modalidade: c.modalidade!,
    situacao: c.situacao ?? null,
  };
}
