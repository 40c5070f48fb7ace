// Bytes of an uploaded file as text: the declared charset, or UTF-8 when the bytes are UTF-8 and Windows-1252 when not.
import iconv from 'iconv-lite';

/** The charset cannot be decoded here (→ 415). */
export class UnsupportedCharsetError extends Error {
  override name = 'UnsupportedCharsetError';
}

/** The bytes are not what the charset says (→ 422). */
export class UndecodableError extends Error {
  override name = 'UndecodableError';
}

// How much of the file is looked at to tell UTF-8 from Latin-1 when no charset is declared.
const SNIFF_BYTES = 64 * 1024;

const UTF8 = new Set(['utf-8', 'utf8', 'unicode-1-1-utf-8']);
// The names iconv-lite reads as true ISO-8859-1, the Portal's export encoding: Node decodes it natively,
// byte for character (no state across chunks), several times faster than iconv-lite's table decoder.
const LATIN1 = new Set(['iso-8859-1', 'iso8859-1', 'iso_8859-1', 'latin1', 'latin-1', 'l1']);
const latin1Decoder = { write: (buf: Buffer) => buf.toString('latin1'), end: () => '' };

/** The charset parameter of a Content-Type header, lowercased; undefined when absent. */
export function charsetOf(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  return m ? m[1]!.toLowerCase() : undefined;
}

/** Throws UnsupportedCharsetError unless the charset can be decoded. */
export function assertCharset(charset: string | undefined): void {
  if (charset !== undefined && !UTF8.has(charset) && !iconv.encodingExists(charset)) {
    throw new UnsupportedCharsetError(
      `charset "${charset}" is not supported; send utf-8, iso-8859-1 or windows-1252`,
    );
  }
}

function utf8Decoder() {
  // fatal: a byte that is not UTF-8 is an error, never a silent U+FFFD ("Educa��o").
  const d = new TextDecoder('utf-8', { fatal: true });
  let offset = 0;
  const run = (buf: Buffer | undefined, stream: boolean) => {
    try {
      const text = d.decode(buf, { stream });
      offset += buf?.length ?? 0;
      return text;
    } catch {
      throw new UndecodableError(
        `the file is not valid UTF-8 (after byte ${offset}); if it is Latin-1, send "Content-Type: text/csv; charset=iso-8859-1"`,
      );
    }
  };
  return { write: (buf: Buffer) => run(buf, true), end: () => run(undefined, false) };
}

function isUtf8(buf: Buffer): boolean {
  try {
    // stream: true tolerates a character cut at the end of the sniffed bytes.
    new TextDecoder('utf-8', { fatal: true }).decode(buf, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/** Decodes a byte stream to text chunks; a UTF-8 byte order mark is dropped either way. */
export async function* decodeStream(
  input: AsyncIterable<Buffer | string>,
  charset: string | undefined,
): AsyncGenerator<string> {
  assertCharset(charset);
  const it = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headBytes = 0;
  let done = false;
  // Without a declared charset, look at the first bytes before choosing.
  if (charset === undefined) {
    while (headBytes < SNIFF_BYTES) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      head.push(b);
      headBytes += b.length;
    }
  }
  const sniffed = Buffer.concat(head);
  const utf8 = charset === undefined ? isUtf8(sniffed) : UTF8.has(charset);
  const decoder = utf8
    ? utf8Decoder()
    : charset !== undefined && LATIN1.has(charset)
      ? latin1Decoder
      : iconv.getDecoder(charset ?? 'windows-1252');
  let first = true;
  const emit = (text: string) => {
    const out = first && text.startsWith('\uFEFF') ? text.slice(1) : text;
    if (text.length > 0) first = false;
    return out;
  };
  if (sniffed.length > 0) yield emit(decoder.write(sniffed));
  while (!done) {
    const r = await it.next();
    if (r.done) break;
    yield emit(decoder.write(typeof r.value === 'string' ? Buffer.from(r.value) : r.value));
  }
  const tail = decoder.end();
  if (tail) yield emit(tail);
}
