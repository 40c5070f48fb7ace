// Server-Sent Events over a hijacked reply: whole events batched into few writes, heartbeats while idle.
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface SseStream {
  /** Queues one whole event (`id:` line, one compact `data:` line, blank line); bursts share a write. */
  send(id: string, data: unknown): boolean;
  /** Queues already-framed text (whole events only); bursts share a write. False: wait for drained(). */
  write(text: string): boolean;
  /** Ends the response; the last byte written is always `\n`. */
  end(): void;
  /** True once the client went away or end() was called. */
  readonly closed: boolean;
  /** Resolves when the socket drains (call when send() returned false). */
  drained(): Promise<void>;
  /** Called once when the client disconnects before end(). */
  onClientClose(fn: () => void): void;
}

/** Frames one event; JSON.stringify never emits a raw newline, so one data line is always enough. */
export function frame(id: string, data: unknown): string {
  return `id: ${id}\ndata: ${JSON.stringify(data)}\n\n`;
}

const BATCH_MS = 10;

export interface OpenSseOptions {
  heartbeatMs: number;
  status?: number;
  /** Protocol headers of the encoder (e.g. the AI SDK's stream marker). */
  headers?: Record<string, string>;
}

export function openSse(_request: FastifyRequest, reply: FastifyReply, opts: OpenSseOptions): SseStream {
  reply.hijack();
  const raw = reply.raw;
  // Headers set earlier by hooks (CORS, x-request-id) must survive the hijack.
  const inherited = reply.getHeaders();
  raw.writeHead(opts.status ?? 200, {
    ...(inherited as Record<string, string>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
    ...opts.headers,
  });
  // Node's HTTP server already disables Nagle on its sockets; the heartbeat keeps proxies from
  // cutting an idle stream, so no per-request socket options (each one is a syscall).

  let closed = false;
  let lastWrite = Date.now();
  const closeHandlers: Array<() => void> = [];
  // Events produced in one burst go out in one socket write (each event is whole inside it):
  // one write per event cost more CPU in syscalls than everything else a turn does.
  let pending = '';
  let scheduled = false;
  let batchTimer: NodeJS.Timeout | undefined;
  const flush = () => {
    scheduled = false;
    batchTimer = undefined;
    if (closed) return;
    if (pending) {
      raw.write(pending);
      pending = '';
      lastWrite = Date.now();
    } else if (!raw.headersSent) {
      raw.flushHeaders();
    }
  };
  let wroteOnce = false;
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    // The first write (headers, `start`) leaves at once; later events gather for a few ms, which
    // no reader notices but which turns a fast reply into two socket writes instead of many.
    if (wroteOnce) batchTimer = setTimeout(flush, BATCH_MS);
    else setImmediate(flush);
    wroteOnce = true;
  };
  // The client sees the headers right away, together with the first events when they are ready.
  schedule();

  // Heartbeat: a comment line while idle so proxies (Railway's edge, nginx) keep the stream open.
  const heartbeat = setInterval(
    () => {
      if (closed || pending) return;
      if (Date.now() - lastWrite >= opts.heartbeatMs - 5) {
        raw.write(': ping\n\n');
        lastWrite = Date.now();
      }
    },
    Math.max(5, Math.floor(opts.heartbeatMs / 2)),
  );
  heartbeat.unref();

  const onClose = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    for (const fn of closeHandlers) fn();
  };
  raw.on('close', onClose);

  const write = (text: string) => {
    if (closed) return false;
    pending += text;
    schedule();
    return !raw.writableNeedDrain;
  };

  return {
    send: (id, data) => write(frame(id, data)),
    write,
    end() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      // The last events leave with the end: a batch timer still set would only wake to find it closed.
      clearTimeout(batchTimer);
      raw.end(pending || undefined);
      pending = '';
    },
    get closed() {
      return closed;
    },
    drained() {
      if (closed || !raw.writableNeedDrain) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          raw.off('drain', done);
          raw.off('close', done);
          resolve();
        };
        raw.once('drain', done);
        raw.once('close', done);
      });
    },
    onClientClose(fn) {
      closeHandlers.push(fn);
    },
  };
}

/**
 * Pipes encoded frames to the client: each piece is whole events (an encoder yields one string per
 * batch of entries), coalesced into few socket writes; ends the response after the last one.
 * `onClientClose` runs if the client goes away first.
 */
export async function pipeSse(
  request: FastifyRequest,
  reply: FastifyReply,
  frames: AsyncIterable<string>,
  opts: OpenSseOptions & { onClientClose?: () => void },
): Promise<void> {
  const sse = openSse(request, reply, opts);
  if (opts.onClientClose) sse.onClientClose(opts.onClientClose);
  try {
    for await (const text of frames) {
      if (sse.closed) break;
      if (!sse.write(text)) await sse.drained();
    }
  } finally {
    sse.end();
  }
}
