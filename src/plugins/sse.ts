// Server-Sent Events over a hijacked reply: whole events batched into few writes, heartbeats while idle.
import type { ServerResponse } from 'node:http';
import { Socket } from 'node:net';
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

/**
 * Heartbeats for every open stream with the same interval, from one timer: a comment line on each
 * stream idle for `heartbeatMs`, so proxies (Railway's edge, nginx) keep it open. Streams are
 * checked every half interval, as a timer of their own would; the wheel spreads them over slots
 * by when they opened (a tick checks one slot), so 10,000 streams are not all written in one tick.
 * One timer and a set entry per stream instead of a `setInterval` (a Timeout and a closure) each.
 */
class HeartbeatWheel {
  private readonly slots: Set<Stream>[];
  private next = 0;
  private size = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly tickMs: number;

  constructor(readonly heartbeatMs: number) {
    const period = Math.max(5, Math.floor(heartbeatMs / 2));
    const count = Math.max(1, Math.min(16, period));
    this.tickMs = Math.floor(period / count);
    this.slots = Array.from({ length: count }, () => new Set<Stream>());
  }

  /** Joins the slot ticked last: its first check comes one period later, as with its own timer. */
  add(s: Stream): Set<Stream> {
    const slot = this.slots[(this.next + this.slots.length - 1) % this.slots.length]!;
    slot.add(s);
    if (this.size++ === 0) {
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
    return slot;
  }

  remove(s: Stream, slot: Set<Stream>): void {
    if (!slot.delete(s)) return;
    if (--this.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private tick(): void {
    const slot = this.slots[this.next]!;
    this.next = (this.next + 1) % this.slots.length;
    const due = Date.now() - (this.heartbeatMs - 5);
    for (const s of slot) s.beat(due);
  }
}

const wheels = new Map<number, HeartbeatWheel>();
function wheelFor(heartbeatMs: number): HeartbeatWheel {
  let w = wheels.get(heartbeatMs);
  if (!w) {
    w = new HeartbeatWheel(heartbeatMs);
    wheels.set(heartbeatMs, w);
  }
  return w;
}

/** A heartbeat as a whole HTTP/1.1 chunk (size line, `: ping` comment, chunk end), shared by every stream. */
const PING = ': ping\n\n';
const PING_CHUNK = Buffer.from(`${PING.length.toString(16)}\r\n${PING}\r\n`, 'latin1');
type ChunkedResponse = FastifyReply['raw'] & { chunkedEncoding?: boolean; outputSize?: number };

/**
 * Whether `raw` takes a whole chunk straight to its socket: chunked, nothing of its own queued, on
 * a real connection, and its headers already written (the caller knows: `headersSent` is true from
 * writeHead on, before the header block has left with the first write).
 */
function directChunks(raw: ChunkedResponse): boolean {
  const socket = raw.socket;
  // Only a real connection: a response over anything else (an injected request's stand-in socket,
  // a wrapper) frames and carries its bytes its own way.
  return (
    raw.chunkedEncoding === true &&
    raw.headersSent &&
    raw.outputSize === 0 &&
    socket instanceof Socket &&
    !socket.destroyed
  );
}

/**
 * Writes a heartbeat. `res.write` frames a chunk as four writes on a corked socket (size, CRLF,
 * data, CRLF) and uncorks on the next tick: ~1.5 KB of garbage per beat, 3 MB/s at 10k streams on
 * 5 s heartbeats, which alone kept V8's memory reducer from ever running (it waits for allocation
 * under ~1 MB/s). A chunked response with nothing of its own waiting (headers out, no output
 * queued in it) takes the same bytes as one write of a shared Buffer straight to its socket.
 */
function writePing(raw: ChunkedResponse, headerOut: boolean): void {
  if (headerOut && directChunks(raw)) raw.socket!.write(PING_CHUNK);
  else raw.write(PING);
}

/**
 * Writes a batch of events as one HTTP/1.1 chunk: straight to the socket when the response allows
 * it (as writePing), else through `res.write`. The direct write is one string write of the framed
 * chunk, not Node's four corked writes and its next-tick uncork. Backpressure is then the
 * socket's: Stream.write and drained() look at both.
 */
function writeChunk(raw: ChunkedResponse, text: string): void {
  if (directChunks(raw)) raw.socket!.write(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
  else raw.write(text);
}

/**
 * Streams with events waiting, flushed together by one timer BATCH_MS after the first joined: a
 * Timeout per stream per batch was ~200 bytes of garbage per token.
 */
let due: Stream[] = [];
function flushDue(): void {
  const list = due;
  due = [];
  for (const s of list) s.flush();
}

/**
 * A response keeps its header block (`_header`, ~0.5 KB here: CORS, rate limit, request id) for its
 * whole life, though once it has left only its truthiness is read (`headersSent`, and the guards
 * of setHeader/writeHead). A held stream's is swapped for one short string shared by all of them,
 * at its first heartbeat check; until then flattenHeaderBlock (openSse) keeps it one flat string.
 * Swapping at the first write instead, with or without the flattening, measured worse (10k live:
 * 151 and 163 MB of live heap, against 146–149), for a reason not found; so it waits.
 */
const SENT_HEADER = 'HTTP/1.1 200 OK\r\n\r\n';
function forgetHeaderBlock(raw: FastifyReply['raw']): void {
  const r = raw as unknown as { _header?: unknown; _headerSent?: unknown };
  if (r._headerSent === true && typeof r._header === 'string') r._header = SENT_HEADER;
}

// One function for a stream's first flush (a stream passes itself): no closure per stream.
const flushStream = (s: Stream) => s.flush();

// One 'close' listener for every response, which finds its stream on the response itself.
const kStream = Symbol('sseStream');
type StreamResponse = FastifyReply['raw'] & { [kStream]?: Stream };
function onResponseClose(this: StreamResponse): void {
  this[kStream]?.clientClosed();
}

/**
 * One open event stream. A class, not closures over locals: a held stream costs one object and
 * its fields, where the closure form kept a dozen functions and their context per stream.
 */
class Stream implements SseStream {
  private pending = '';
  private scheduled = false;
  private wroteOnce = false;
  /** The header block went out (with the first write, or flushHeaders). */
  private headerOut = false;
  private lastWrite = Date.now();
  private done = false;
  private closeHandler: (() => void) | null = null;
  private parserReleased = false;
  private readonly slot: Set<Stream>;

  constructor(
    private readonly raw: FastifyReply['raw'],
    private readonly wheel: HeartbeatWheel,
  ) {
    this.slot = wheel.add(this);
    (raw as StreamResponse)[kStream] = this;
    raw.on('close', onResponseClose);
    // The client sees the headers right away, together with the first events when they are ready.
    this.schedule();
  }

  get closed(): boolean {
    return this.done;
  }

  send(id: string, data: unknown): boolean {
    return this.write(frame(id, data));
  }

  write(text: string): boolean {
    if (this.done) return false;
    this.pending += text;
    this.schedule();
    return !this.raw.writableNeedDrain && !this.raw.socket?.writableNeedDrain;
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.wheel.remove(this, this.slot);
    // The last events leave with the end (a batch still due finds the stream done).
    this.raw.end(this.pending || undefined);
    this.pending = '';
  }

  drained(): Promise<void> {
    const raw = this.raw;
    // The response's own buffer, or the socket's when events went to it directly (writeChunk).
    const behind = raw.writableNeedDrain ? raw : raw.socket?.writableNeedDrain ? raw.socket : null;
    if (this.done || !behind) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        behind.off('drain', done);
        raw.off('close', done);
        resolve();
      };
      behind.once('drain', done);
      raw.once('close', done);
    });
  }

  onClientClose(fn: () => void): void {
    const prev = this.closeHandler;
    this.closeHandler = prev
      ? () => {
          prev();
          fn();
        }
      : fn;
  }

  /**
   * The wheel's check: a comment line when nothing was written since `due`. The first check (half
   * a heartbeat interval after opening) also hands the connection's HTTP parser back: a stream
   * still open by then is a held one.
   */
  beat(due: number): void {
    if (this.done) return;
    if (!this.parserReleased) {
      this.parserReleased = true;
      releaseHttpParser(this.raw);
      if (this.headerOut) forgetHeaderBlock(this.raw);
    }
    if (this.pending || this.lastWrite > due) return;
    writePing(this.raw, this.headerOut);
    this.lastWrite = Date.now();
  }

  flush(): void {
    this.scheduled = false;
    if (this.done) return;
    if (this.pending) {
      if (this.headerOut) writeChunk(this.raw, this.pending);
      else this.raw.write(this.pending);
      this.pending = '';
      this.lastWrite = Date.now();
    } else if (!this.headerOut) {
      this.raw.flushHeaders();
    }
    this.headerOut = true;
  }

  // Events produced in one burst go out in one socket write (each event is whole inside it):
  // one write per event cost more CPU in syscalls than everything else a turn does.
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // The first write (headers, `start`) leaves at once; later events gather for a few ms, which
    // no reader notices but which turns a fast reply into two socket writes instead of many.
    if (!this.wroteOnce) setImmediate(flushStream, this);
    else {
      if (due.length === 0) setTimeout(flushDue, BATCH_MS);
      due.push(this);
    }
    this.wroteOnce = true;
  }

  /** The response closed (the client left, or after end()). */
  clientClosed(): void {
    if (this.done) return;
    this.done = true;
    this.wheel.remove(this, this.slot);
    this.closeHandler?.();
  }
}

interface HttpParser {
  incoming: unknown;
  onIncoming: unknown;
  socket: unknown;
  _consumed?: boolean;
  unconsume(): void;
  remove(): void;
  close(): void;
}
type HeldSocket = Socket & {
  parser?: HttpParser | null;
  server?: { emit(event: 'connection', socket: Socket): boolean } | null;
  _handle?: { _consumed?: boolean } | null;
  [kHeldBytes]?: Buffer[] | null;
};
const kHeldBytes = Symbol('heldBytes');
/** A client may send a request behind a held stream (pipelining); more than this closes its connection. */
const MAX_HELD_BYTES = 64 * 1024;

/** The listeners Node's HTTP server puts on a connection's socket, by event, as Node names them. */
const SERVER_LISTENERS: ReadonlyArray<readonly [string, string]> = [
  ['end', 'bound socketOnEnd'],
  ['close', 'bound socketOnClose'],
  ['drain', 'bound socketOnDrain'],
  ['error', 'socketOnError'],
  ['timeout', 'socketOnTimeout'],
];
const CONSUME_LISTENERS: ReadonlyArray<readonly [string, string]> = [
  ['resume', 'onSocketResume'],
  ['pause', 'onSocketPause'],
];
const listenerNamed = (socket: Socket, event: string, name: string) =>
  socket.listeners(event).find((fn) => (fn as { name?: string }).name === name) as
    | ((...args: unknown[]) => void)
    | undefined;

/** Bytes a client sends while its connection has no parser: kept for the parser it gets next. */
function holdBytes(this: HeldSocket, chunk: Buffer): void {
  const held = this[kHeldBytes] ?? [];
  this[kHeldBytes] = held;
  held.push(chunk);
  if (held.reduce((n, b) => n + b.length, 0) > MAX_HELD_BYTES) this.destroy();
}

/**
 * Frees the HTTP parser of a held stream's connection; returns whether it did.
 *
 * Node's HTTP server keeps one parser per connection (a C++ object: llhttp and the header slots)
 * to read the next request on it. On Node 24 it is ~10 KB of malloc'd memory (2 KB on Node 20):
 * for 10,000 held streams ~58 MB of RSS doing nothing, since a stream's request has been read
 * whole. So, as Node does for an upgraded connection, the parser leaves the server's connection
 * list (request and header timeouts, closeIdleConnections) and the socket, and is deleted. Bytes
 * the client sends meanwhile (a pipelined request) wait, up to 64 KB. When the stream ends the
 * socket goes back to the server as a new connection (`'connection'`, Node's documented way to
 * hand it a socket), with a parser of its own and those bytes: keep-alive works as before. Any
 * shape other than Node's (another runtime, a future Node) leaves the connection alone, or closes
 * it after the stream rather than guess.
 */
export function releaseHttpParser(res: ServerResponse): boolean {
  const socket = res.socket as HeldSocket | null;
  const parser = socket?.parser;
  if (!socket || !parser || res.writableEnded || !res.req?.complete) return false;
  if (typeof parser.remove !== 'function' || typeof parser.close !== 'function') return false;
  if (parser.incoming !== res.req && parser.incoming !== null) return false;
  const feed = listenerNamed(socket, 'data', 'bound socketOnData');
  if (!feed) return false;
  socket.removeListener('data', feed);
  socket.parser = null;
  if (parser._consumed) {
    parser.unconsume();
    parser._consumed = false;
  }
  // The next parser reads the socket in C++ again only if the handle says it is free.
  if (socket._handle) socket._handle._consumed = false;
  parser.remove();
  parser.close();
  // What Node's cleanParser lets go of (the JS object stays, bound into the socket's end listener).
  const slots = parser.constructor as Partial<
    Record<'kOnMessageBegin' | 'kOnExecute' | 'kOnTimeout', number>
  >;
  for (const slot of [slots.kOnMessageBegin, slots.kOnExecute, slots.kOnTimeout])
    if (typeof slot === 'number') (parser as unknown as Record<number, unknown>)[slot] = null;
  parser.onIncoming = null;
  parser.incoming = null;
  parser.socket = null;
  // Node's wrappers of on/addListener exist for a parser that reads in C++; without one it restores these itself.
  socket.on = Socket.prototype.on;
  socket.addListener = Socket.prototype.addListener;
  socket.prependListener = Socket.prototype.prependListener;
  socket.on('data', holdBytes);
  res.on('finish', handBack);
  return true;
}

/**
 * A released stream's response finished (Node's own 'finish' listener, which detaches it and arms
 * the keep-alive timer, ran first): the socket becomes a new connection of the server's.
 */
function handBack(this: ServerResponse): void {
  const socket = this.req.socket as HeldSocket;
  if (socket.destroyed || !socket.readable || !socket.writable || !socket.server) return;
  const found = SERVER_LISTENERS.map(([event, name]) => [event, listenerNamed(socket, event, name)] as const);
  if (found.some(([, fn]) => !fn)) {
    socket.destroySoon(); // not the listeners this was written against: close rather than guess
    return;
  }
  for (const [event, fn] of found) socket.removeListener(event, fn!);
  // Only there while a parser read in C++ (releaseHttpParser's unconsume leaves them).
  for (const [event, name] of CONSUME_LISTENERS) {
    const fn = listenerNamed(socket, event, name);
    if (fn) socket.removeListener(event, fn);
  }
  socket.removeListener('data', holdBytes);
  // A new connection has no idle timer until its first response; the old one's must not fire on it.
  socket.setTimeout(0);
  const held = socket[kHeldBytes];
  socket[kHeldBytes] = null;
  socket.server.emit('connection', socket);
  if (held) socket.unshift(Buffer.concat(held));
}

/**
 * Node builds a response's header block by appending line after line and keeps it for the life of
 * the response (`_header`, which `headersSent` reads): a tree of ~50 cons-strings (~2 KB) held by
 * every open stream. Reading a character makes V8 flatten it in place into one string (~0.4 KB).
 */
function flattenHeaderBlock(raw: FastifyReply['raw']): void {
  const block: unknown = (raw as unknown as { _header?: unknown })._header;
  if (typeof block === 'string') block.charCodeAt(0);
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
  flattenHeaderBlock(raw);
  // Node's HTTP server already disables Nagle on its sockets; the heartbeat keeps proxies from
  // cutting an idle stream, so no per-request socket options (each one is a syscall).
  return new Stream(raw, wheelFor(opts.heartbeatMs));
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
