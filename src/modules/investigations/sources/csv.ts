// CSV uploads: a header row of Contract field names, "," or ";" or tab, decimal comma or dot, numbered errors.
import { type Contract, contractSchema } from '../types.js';
import { parseBrDate, parseDecimal } from './values.js';

const REQUIRED = [
  'objeto',
  'orgao',
  'orgao_codigo',
  'fornecedor',
  'cnpj_fornecedor',
  'valor_inicial',
  'data_assinatura',
  'modalidade',
] as const;
const OPTIONAL = ['id', 'numero', 'valor_final', 'situacao'] as const;
const KNOWN = new Set<string>([...REQUIRED, ...OPTIONAL]);

export interface CsvError {
  /** 1-based line of the file where the record starts (the header is line 1). */
  line: number;
  message: string;
}

interface CsvRecord {
  line: number;
  fields: string[];
}

function detectDelimiter(firstLine: string): string {
  const counts = [';', ',', '\t'].map((d) => [d, firstLine.split(d).length - 1] as const);
  counts.sort((a, b) => b[1] - a[1]);
  return counts[0]![1] > 0 ? counts[0]![0] : ',';
}

/** RFC 4180 records: quoted fields may hold delimiters, doubled quotes and line breaks. */
function* records(text: string, delimiter: string): Generator<CsvRecord | { line: number; error: string }> {
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let quoted = false;
    let atFieldStart = true;
    for (;;) {
      if (i >= text.length) {
        if (quoted) {
          yield { line: start, error: 'a quoted field is never closed' };
          return;
        }
        break;
      }
      const ch = text[i]!;
      if (quoted) {
        if (ch === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          quoted = false;
          i++;
          continue;
        }
        if (ch === '\n') line++;
        field += ch;
        i++;
        continue;
      }
      if (ch === '"' && atFieldStart) {
        quoted = true;
        atFieldStart = false;
        i++;
        continue;
      }
      if (ch === delimiter) {
        fields.push(field);
        field = '';
        atFieldStart = true;
        i++;
        continue;
      }
      if (ch === '\r' || ch === '\n') {
        i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
        line++;
        break;
      }
      field += ch;
      atFieldStart = false;
      i++;
    }
    fields.push(field);
    yield { line: start, fields };
  }
}

export function parseContractsCsv(text: string): {
  contracts: Contract[];
  errors: Array<{ line: number; message: string }>;
} {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const contracts: Contract[] = [];
  const errors: CsvError[] = [];
  const firstLine = body.slice(0, body.search(/\r?\n|$/));
  const iter = records(body, detectDelimiter(firstLine));

  const head = iter.next();
  if (head.done || 'error' in head.value) {
    return { contracts, errors: [{ line: 1, message: 'the file is empty or has no header row' }] };
  }
  const header = head.value.fields.map((h) => h.trim().toLowerCase());
  const missing = REQUIRED.filter((f) => !header.includes(f));
  const duplicated = header.filter((h, i) => KNOWN.has(h) && header.indexOf(h) !== i);
  if (missing.length > 0 || duplicated.length > 0) {
    const problems = [
      missing.length > 0 ? `missing column(s): ${missing.join(', ')}` : '',
      duplicated.length > 0 ? `repeated column(s): ${duplicated.join(', ')}` : '',
    ].filter(Boolean);
    return {
      contracts,
      errors: [{ line: 1, message: `${problems.join('; ')} (header: ${header.join(', ')})` }],
    };
  }

  const firstLineOfId = new Map<string, number>();
  for (const rec of iter) {
    if ('error' in rec) {
      errors.push({ line: rec.line, message: rec.error });
      break;
    }
    if (rec.fields.every((f) => f.trim() === '')) continue;
    if (rec.fields.length !== header.length) {
      errors.push({
        line: rec.line,
        message: `expected ${header.length} fields, found ${rec.fields.length}`,
      });
      continue;
    }
    const cell = (name: string) => {
      const i = header.indexOf(name);
      const v = i < 0 ? '' : rec.fields[i]!.trim();
      return v === '' ? undefined : v;
    };
    const problems: string[] = [];
    const number = (name: string) => {
      const v = cell(name);
      if (v === undefined) return undefined;
      const n = parseDecimal(v);
      if (n === undefined || Number.isNaN(n)) problems.push(`${name}: "${v}" is not a number`);
      return n;
    };
    const candidate = {
      // Spreadsheets rarely carry an id; the line number is stable and lets a reader find the row.
      id: cell('id') ?? `linha-${rec.line}`,
      numero: cell('numero') ?? null,
      objeto: cell('objeto'),
      orgao: cell('orgao'),
      orgao_codigo: cell('orgao_codigo'),
      fornecedor: cell('fornecedor'),
      cnpj_fornecedor: cell('cnpj_fornecedor'),
      valor_inicial: number('valor_inicial'),
      valor_final: number('valor_final'),
      data_assinatura:
        cell('data_assinatura') === undefined ? undefined : parseBrDate(cell('data_assinatura')!),
      modalidade: cell('modalidade'),
      situacao: cell('situacao') ?? null,
    };
    const parsed = contractSchema.safeParse(candidate);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const path = issue.path.join('.');
        // A bad number was already reported in words; zod's "expected number" would repeat it.
        if (!problems.some((p) => p.startsWith(`${path}:`)))
          problems.push(`${path || 'row'}: ${issue.message}`);
      }
    }
    if (problems.length > 0 || !parsed.success) {
      errors.push({ line: rec.line, message: problems.join('; ') });
      continue;
    }
    const first = firstLineOfId.get(parsed.data.id);
    if (first !== undefined) {
      errors.push({ line: rec.line, message: `id: "${parsed.data.id}" repeats the id of line ${first}` });
      continue;
    }
    firstLineOfId.set(parsed.data.id, rec.line);
    contracts.push(parsed.data);
  }
  return { contracts, errors };
}
