// A byte-level SSE reader over a real socket, strict about the framing the frontend relies on.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface SseEvent {
  id: string;
  data: Record<string, any>;
}

/** Parses a complete SSE body; throws when a block is not exactly `id:` + one `data:` line. */
export function parseSse(raw: string): { events: SseEvent[]; comments: number } {
  const events: SseEvent[] = [];
  let comments = 0;
  const blocks = raw.split('\n\n');
  if (blocks.at(-1) !== '')
    throw new Error(`stream does not end with a blank line: ${JSON.stringify(raw.slice(-40))}`);
  for (const block of blocks.slice(0, -1)) {
    const lines = block.split('\n');
    if (lines.every((l) => l.startsWith(':'))) {
      comments += lines.length;
      continue;
    }
    if (lines.length !== 2 || !lines[0]!.startsWith('id: ') || !lines[1]!.startsWith('data: ')) {
      throw new Error(`bad event block: ${JSON.stringify(block)}`);
    }
    events.push({ id: lines[0]!.slice(4), data: JSON.parse(lines[1]!.slice(6)) });
  }
  return { events, comments };
}

export interface StreamResult {
  status: number;
  headers: IncomingHttpHeaders;
  raw: string;
  events: SseEvent[];
  json?: any;
}

export interface StreamOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Destroy the socket once this many events arrived (a client going away). */
  disconnectAfter?: number;
  /** Called with each event as it arrives. */
  onEvent?: (e: SseEvent) => void;
}

/** Sends a request and reads the whole response (or until `disconnectAfter` events). */
export function streamRequest(base: string, path: string, opts: StreamOptions = {}): Promise<StreamResult> {
  const url = new URL(path, base);
  const payload =
    opts.body === undefined
      ? undefined
      : typeof opts.body === 'string'
        ? opts.body
        : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: opts.method ?? (payload === undefined ? 'GET' : 'POST'),
        headers: {
          accept: 'text/event-stream',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...opts.headers,
        },
      },
      (res) => {
        let raw = '';
        let seen = 0;
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          const isSse = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
          let events: SseEvent[] = [];
          if (isSse) {
            const complete = raw.slice(0, raw.lastIndexOf('\n\n') + 2);
            events = parseSse(complete).events;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            raw,
            events,
            json: !isSse && raw ? JSON.parse(raw) : undefined,
          });
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          raw += chunk;
          if (!String(res.headers['content-type']).startsWith('text/event-stream')) return;
          const blocks = raw
            .split('\n\n')
            .slice(0, -1)
            .filter((b) => !b.startsWith(':'));
          while (seen < blocks.length) {
            const block = blocks[seen++]!;
            const [, dataLine] = block.split('\n');
            const e = { id: block.split('\n')[0]!.slice(4), data: JSON.parse(dataLine!.slice(6)) };
            opts.onEvent?.(e);
          }
          if (opts.disconnectAfter !== undefined && seen >= opts.disconnectAfter) {
            req.destroy();
            finish();
          }
        });
        res.on('end', finish);
        res.on('error', () => finish());
      },
    );
    req.on('error', (err) => (opts.disconnectAfter !== undefined ? undefined : reject(err)));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
