// Cuts streamed model text at whitespace: the frontend joins chunks with a space unless one ends in whitespace.

export interface Chunker {
  /** Adds text; returns the part up to and including the last whitespace, or '' to hold it all back. */
  push(text: string): string;
  /** The held-back tail (the last chunk may end without whitespace). */
  flush(): string;
}

const WS = /\s/;

export function createChunker(): Chunker {
  let pending = '';
  return {
    push(text) {
      pending += text;
      let cut = pending.length;
      while (cut > 0 && !WS.test(pending[cut - 1]!)) cut--;
      if (cut === 0) return '';
      const out = pending.slice(0, cut);
      pending = pending.slice(cut);
      return out;
    },
    flush() {
      const out = pending;
      pending = '';
      return out;
    },
  };
}
