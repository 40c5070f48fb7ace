// A text/csv request body as contracts: its charset decoded (or 415), its size capped (413), its rows checked (422).
import type { Readable } from 'node:stream';
import { AppError } from '../../errors.js';
import { parseContractsCsv } from './sources/csv.js';
import { assertCharset, charsetOf, UndecodableError, UnsupportedCharsetError } from './sources/decode.js';
import type { Contract } from './types.js';

/** What the routes' CSV parser hands the body schema. */
export interface CsvUpload {
  contracts: Contract[];
}

export const isCsvUpload = (v: unknown): v is CsvUpload =>
  typeof v === 'object' && v !== null && Array.isArray((v as CsvUpload).contracts);

async function* capped(body: AsyncIterable<Buffer>, maxBytes: number) {
  let seen = 0;
  for await (const chunk of body) {
    seen += chunk.length;
    if (seen > maxBytes) throw new AppError('PAYLOAD_TOO_LARGE');
    yield chunk;
  }
}

/** Reads the whole upload before anything is written: one bad row and nothing is stored. */
export async function readCsvUpload(
  body: Readable,
  contentType: string | undefined,
  opts: { maxContracts: number; maxBytes: number },
): Promise<CsvUpload> {
  const charset = charsetOf(contentType);
  try {
    assertCharset(charset);
    const { contracts, errors } = await parseContractsCsv(capped(body, opts.maxBytes), {
      charset,
      maxContracts: opts.maxContracts,
    });
    if (errors.length > 0) {
      const first = errors[0]!;
      const where = `line ${first.line}${first.column ? `, column "${first.column}"` : ''}`;
      throw new AppError(
        'VALIDATION_ERROR',
        `the CSV has errors (first at ${where}: ${first.message}); nothing was stored`,
        errors,
      );
    }
    if (contracts.length === 0) {
      throw new AppError('VALIDATION_ERROR', 'the CSV holds no contracts', [
        { line: 2, message: 'add one row per contract after the header' },
      ]);
    }
    return { contracts };
  } catch (err) {
    if (err instanceof UnsupportedCharsetError)
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', err.message, { charset });
    if (err instanceof UndecodableError) throw new AppError('VALIDATION_ERROR', err.message, { charset });
    throw err;
  }
}
