// Incremental Server-Sent Events decoder for model streams: bytes in, the `data` of each complete event out.

/** A model's events are a few hundred bytes; a line or an event past this is a broken stream. */
export const MAX_SSE_EVENT_BYTES = 1 << 20;

/** The stream sent a line or an event larger than the decoder holds. */
export class SseTooLarge extends Error {
  override name = 'SseTooLarge';
}

/**
 * Bytes may be split anywhere, even inside a UTF-8 sequence or a CRLF. Lines are cut on bytes (a
 * CR or LF byte is never part of a multi-byte character) and decoded whole, so no per-stream text
 * decoder is held: a held reply keeps this object and, rarely, the bytes of a line still in flight.
 * Comments and fields other than `data` are dropped.
 */
export class SseDecoder {
  /** The bytes of a line not ended yet (in a buffer of its own: a chunk's memory is not kept). */
  private rest: Buffer | null = null;
  /** The last line ended with a CR at the end of a chunk: an LF first in the next one is its pair. */
  private afterCr = false;
  /** The event's data lines so far, joined by LF; null while it has none. */
  private data: string | null = null;

  /** `maxBytes` bounds a line and an event's data; past it `push` throws SseTooLarge. */
  constructor(private readonly maxBytes = MAX_SSE_EVENT_BYTES) {}

  push(chunk: Uint8Array): string[] {
    const out: string[] = [];
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    if (this.afterCr && buf.length > 0) {
      this.afterCr = false;
      if (buf[0] === 10) start = 1;
    }
    for (let i = start; i < buf.length; i++) {
      const c = buf[i];
      if (c !== 10 && c !== 13) continue;
      this.line(this.text(buf, start, i), out);
      if (c === 13) {
        if (i + 1 === buf.length) this.afterCr = true;
        else if (buf[i + 1] === 10) i++;
      }
      start = i + 1;
    }
    if (start < buf.length) this.keep(buf.subarray(start));
    return out;
  }

  end(): string[] {
    const out: string[] = [];
    if (this.rest) {
      this.line(this.rest.toString('utf8'), out);
      this.rest = null;
    }
    this.line('', out);
    return out;
  }

  private text(buf: Buffer, start: number, end: number): string {
    if (!this.rest) return buf.toString('utf8', start, end);
    const text = Buffer.concat([this.rest, buf.subarray(start, end)]).toString('utf8');
    this.rest = null;
    return text;
  }

  private keep(tail: Buffer): void {
    const size = (this.rest?.length ?? 0) + tail.length;
    if (size > this.maxBytes) throw new SseTooLarge(`a line longer than ${this.maxBytes} bytes`);
    const own = Buffer.allocUnsafeSlow(size);
    if (this.rest) this.rest.copy(own);
    tail.copy(own, size - tail.length);
    this.rest = own;
  }

  private line(text: string, out: string[]): void {
    if (text === '') {
      if (this.data !== null) out.push(this.data);
      this.data = null;
      return;
    }
    if (text.charCodeAt(0) === 58) return; // `:` opens a comment
    const colon = text.indexOf(':');
    if ((colon < 0 ? text : text.slice(0, colon)) !== 'data') return;
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    this.data = this.data === null ? value : `${this.data}\n${value}`;
    // Characters, not bytes: a cheap bound that is never below the byte count's.
    if (this.data.length > this.maxBytes)
      throw new SseTooLarge(`an event larger than ${this.maxBytes} bytes`);
  }
}
