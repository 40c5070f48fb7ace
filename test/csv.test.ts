// CSV uploads: the Portal's own export in Latin-1, charsets declared and detected, Brazilian numbers, row/column errors.
import { readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { parseContractsCsv } from '../src/modules/investigations/sources/csv.js';
import { parseMoney } from '../src/modules/investigations/sources/values.js';
import { contractSchema } from '../src/modules/investigations/types.js';
import { createTestApp } from './support/app.js';
import { createTestDb, createTestRedis, type TestDb } from './support/backends.js';

const SAMPLE = readFileSync(new URL('./data/portal-contratos-latin1.csv', import.meta.url));
const BASE = '/api/v1/investigations';
const HEADER =
  'id;numero;objeto;orgao;orgao_codigo;fornecedor;cnpj_fornecedor;valor_inicial;valor_final;data_assinatura;modalidade;situacao';

describe('CSV parsing', () => {
  it('reads the Portal export as written: Latin-1 detected, ";" and quotes, Portuguese columns', async () => {
    expect(SAMPLE.includes(Buffer.from('Saúde', 'utf8'))).toBe(false); // really Latin-1 bytes
    const { contracts, errors } = await parseContractsCsv(SAMPLE);
    expect(errors).toEqual([]);
    expect(contracts).toHaveLength(16);
    expect(contracts[0]).toEqual({
      id: 'linha-2',
      numero: '00031/2024',
      objeto: 'Aquisição de material médico-hospitalar (luvas e seringas)',
      orgao: 'Ministério da Saúde',
      orgao_codigo: '36000',
      fornecedor: 'Distribuidora São João Ltda',
      cnpj_fornecedor: '12.345.678/0001-95',
      valor_inicial: 59_900,
      valor_final: 59_900,
      data_assinatura: '2024-03-04',
      modalidade: 'Dispensa de Licitação',
      situacao: 'Ativo',
    });
    expect(contracts[3]).toMatchObject({ valor_inicial: 1_000_000, valor_final: 1_480_000 });
    // Declared, the same bytes read the same; as UTF-8 they are refused, never garbled.
    expect((await parseContractsCsv(SAMPLE, { charset: 'iso-8859-1' })).contracts).toEqual(contracts);
    await expect(parseContractsCsv(SAMPLE, { charset: 'utf-8' })).rejects.toThrow(/not valid UTF-8/);
  });

  it('reads UTF-8 with and without a BOM, and "," files with dot decimals', async () => {
    const body = `${HEADER}\r\nA1;001/2024;"Aquisição de papel; formato A4";Ministério da Educação;26000;Papelaria X;12345678000190;1.234,56;;15/03/2024;Pregão;Ativo\r\n`;
    for (const bytes of [Buffer.from(body), Buffer.from(`\uFEFF${body}`)]) {
      const { contracts, errors } = await parseContractsCsv(bytes);
      expect(errors).toEqual([]);
      expect(contracts[0]).toMatchObject({
        objeto: 'Aquisição de papel; formato A4',
        orgao: 'Ministério da Educação',
        valor_inicial: 1234.56,
        cnpj_fornecedor: '12.345.678/0001-90',
      });
    }
    const comma = [
      'objeto,orgao,orgao_codigo,fornecedor,cnpj_fornecedor,valor_inicial,valor_final,data_assinatura,modalidade',
      'Papel,MS,36000,X,1,1234.5,"1.500,00",2024-03-15,Pregão',
      'Toner,MS,36000,Y,2,"2,5",3,2024-03-16,Dispensa de Licitação',
    ].join('\n');
    const { contracts } = await parseContractsCsv(comma);
    expect(contracts.map((c) => [c.id, c.valor_inicial, c.valor_final])).toEqual([
      ['linha-2', 1234.5, 1500],
      ['linha-3', 2.5, 3],
    ]);
  });

  it('reads values in reais the Brazilian way', () => {
    expect(parseMoney('59.900')).toBe(59_900);
    expect(parseMoney('1.000')).toBe(1000);
    expect(parseMoney('R$ 1.234.567,89')).toBe(1_234_567.89);
    expect(parseMoney('1234,5')).toBe(1234.5);
    expect(parseMoney('1,234.56')).toBe(1234.56);
    expect(parseMoney('59.9')).toBe(59.9);
    expect(parseMoney('12,3,4')).toBeUndefined();
    expect(parseMoney('dez reais')).toBeUndefined();
  });

  it('names the row, the column and the format expected; a file with errors yields nothing', async () => {
    const row = (id: string, over: Partial<Record<string, string>> = {}) => {
      const v = { objeto: 'Papel', valor: '10,00', data: '02/01/2024', ...over };
      return `${id};;${v.objeto};MS;36000;X;1;${v.valor};;${v.data};Pregão;`;
    };
    const csv = [
      HEADER,
      row('ok-1'),
      row('bad-number', { valor: 'dez reais' }),
      row('bad-date', { data: '31/02/2025' }),
      row('no-objeto', { objeto: '' }),
      'short;row;only',
      row('multi', { objeto: '"Papel\nem duas linhas"' }),
      row('ok-1'),
    ].join('\n');
    const { contracts, errors } = await parseContractsCsv(csv);
    expect(contracts).toEqual([]);
    expect(errors).toEqual([
      {
        line: 3,
        column: 'valor_inicial',
        message: '"dez reais" is not a value in reais; expected 1.234,56 or 1234.56',
      },
      {
        line: 4,
        column: 'data_assinatura',
        message: '"31/02/2025" is not a date; expected dd/mm/yyyy (or yyyy-mm-dd)',
      },
      { line: 5, column: 'objeto', message: 'is empty' },
      { line: 6, message: 'expected 12 fields, found 3' },
      { line: 9, column: 'id', message: '"ok-1" repeats the id of line 2' },
    ]);
  });

  it('holds every row to the upload schema: lengths and values past its limits are named', async () => {
    const row = (id: string, objeto: string, valor: string) =>
      `${id};;${objeto};MS;36000;X;1;${valor};;02/01/2024;Pregão;`;
    const { contracts, errors } = await parseContractsCsv(
      [HEADER, row('long', 'x'.repeat(5001), '10,00'), row('huge', 'Papel', '2.000.000.000.000.000,00')].join(
        '\n',
      ),
    );
    expect(contracts).toEqual([]);
    expect(errors).toEqual([
      { line: 2, column: 'objeto', message: expect.stringMatching(/5000/) },
      { line: 3, column: 'valor_inicial', message: expect.stringMatching(/1000000000000000|1e\+15/) },
    ]);
    // Within the limits the row is the contract the JSON upload's schema would make of it.
    const ok = await parseContractsCsv([HEADER, row('fine', 'Papel', '10,00')].join('\n'));
    expect(ok.contracts).toEqual([
      contractSchema.parse({
        id: 'fine',
        objeto: 'Papel',
        orgao: 'MS',
        orgao_codigo: '36000',
        fornecedor: 'X',
        cnpj_fornecedor: '1',
        valor_inicial: 10,
        data_assinatura: '2024-01-02',
        modalidade: 'Pregão',
      }),
    ]);
  });

  it('refuses malformed quoting, a header without the needed columns, and an empty file', async () => {
    expect(
      (await parseContractsCsv(`${HEADER}\nA;;"a"b;MS;36000;X;1;10;;2024-01-02;Pregão;`)).errors,
    ).toEqual([{ line: 2, message: expect.stringContaining('text after a closing quote') }]);
    expect((await parseContractsCsv(`${HEADER}\nA;;"Papel;MS;36000`)).errors).toEqual([
      { line: 2, message: 'a quoted field is never closed' },
    ]);
    const missing = await parseContractsCsv('"Número do Contrato";"Objeto"\n"1";"Papel"');
    expect(missing.errors[0]!.message).toMatch(/^missing column\(s\): orgao \(accepted: orgao \| nome orgao/);
    expect((await parseContractsCsv('')).errors).toEqual([
      { line: 1, message: 'the file is empty or has no header row' },
    ]);
  });
});

describe('CSV upload over HTTP', () => {
  let tdb: TestDb;
  let app: FastifyInstance;
  const redis = createTestRedis();
  beforeAll(async () => {
    tdb = await createTestDb();
    app = await createTestApp({ db: tdb.handle, redis });
  });
  afterAll(async () => {
    await app.close();
    await redis?.close();
    await tdb.drop();
  });

  const stored = async () =>
    rowsOf<{ n: number }>(await tdb.handle.db.execute(sql`select count(*)::int as n from investigations`))[0]!
      .n;
  const upload = (payload: Buffer | string, contentType: string) =>
    app.inject({ method: 'POST', url: `${BASE}/`, payload, headers: { 'content-type': contentType } });

  async function finished(id: string) {
    const deadline = Date.now() + 25_000;
    for (;;) {
      const s = (await app.inject({ url: `${BASE}/${id}` })).json();
      if (['completed', 'failed', 'cancelled'].includes(s.status)) return s;
      if (Date.now() > deadline) throw new Error(`not finished: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('uploads the Latin-1 Portal export and finds the planted anomalies with agency names spelled right', async () => {
    for (const contentType of ['text/csv; charset=iso-8859-1', 'text/csv']) {
      const r = await upload(SAMPLE, contentType);
      expect(r.statusCode, r.body).toBe(202);
      const { investigation_id: id } = r.json();
      expect((await finished(id)).status).toBe('completed');
      const results = (await app.inject({ url: `${BASE}/${id}/results` })).json();
      expect(results.records_analyzed).toBe(16);
      const byType = Object.fromEntries(results.findings.map((f: { type: string }) => [f.type, f]));
      expect(byType.contract_splitting.contract_ids.sort()).toEqual(['linha-2', 'linha-3', 'linha-4']);
      expect(byType.contract_splitting.title).toContain('Ministério da Saúde');
      expect(byType.contract_splitting.title).toContain('Distribuidora São João Ltda');
      expect(byType.value_increase.contract_ids).toEqual(['linha-5']);
      expect(JSON.stringify(results)).not.toMatch(/\uFFFD|Ã/);
    }
  });

  it('refuses an unknown charset with 415, bad rows with 422 naming row and column, and writes nothing', async () => {
    const before = await stored();
    const unknown = await upload(SAMPLE, 'text/csv; charset=x-klingon');
    expect(unknown.statusCode).toBe(415);
    expect(unknown.json().error.message).toMatch(/charset "x-klingon" is not supported/);

    const bad = iconv.encode(
      [
        '"Número do Contrato";"Objeto";"Modalidade Compra";"Código Órgão";"Nome Órgão";"Data Assinatura Contrato";"Código Contratado";"Nome Contratado";"Valor Inicial Compra"',
        '"1/2025";"Papel";"Pregão";"26000";"Ministério da Educação";"31/02/2025";"1";"X";"1.000"',
      ].join('\r\n'),
      'latin1',
    );
    const r = await upload(bad, 'text/csv; charset=iso-8859-1');
    expect(r.statusCode).toBe(422);
    expect(r.json().error.details).toEqual([
      {
        line: 2,
        column: 'Data Assinatura Contrato',
        message: '"31/02/2025" is not a date; expected dd/mm/yyyy (or yyyy-mm-dd)',
      },
    ]);
    expect(r.json().error.message).toMatch(/line 2, column "Data Assinatura Contrato"/);

    // Postgres text cannot hold NUL (lib/text.ts): refused, naming the row and column, in either charset.
    const withNul = [
      HEADER,
      'A1;001/2024;Papel A4;Ministério da Educação;26000;Papelaria X;12345678000190;100,00;;15/03/2024;Pregão;Ativo',
      'A2;002/2024;Papel\u0000A3;Ministério da Educação;26000;Papelaria X;12345678000190;100,00;;16/03/2024;Pregão;Ativo',
    ].join('\r\n');
    for (const [bytes, contentType] of [
      [Buffer.from(withNul, 'utf8'), 'text/csv; charset=utf-8'],
      [iconv.encode(withNul, 'latin1'), 'text/csv; charset=iso-8859-1'],
      [iconv.encode(withNul, 'latin1'), 'text/csv'],
    ] as const) {
      const nul = await upload(bytes, contentType);
      expect(nul.statusCode, contentType).toBe(422);
      expect(nul.json().error.details).toEqual([
        { line: 3, column: 'objeto', message: 'must not contain the NUL character (U+0000)' },
      ]);
      expect(nul.json().error.message).toMatch(/line 3, column "objeto"/);
    }

    const garbled = await upload(SAMPLE, 'text/csv; charset=utf-8');
    expect(garbled.statusCode).toBe(422);
    expect(garbled.json().error.message).toMatch(/not valid UTF-8/);
    expect(await stored()).toBe(before);
    const inputs = await tdb.handle.db.execute(sql`select count(*)::int as n from investigation_inputs`);
    expect(rowsOf<{ n: number }>(inputs)[0]!.n).toBe(0);
  });
});
