// The connections to an HTTP/2 provider, on node:http2: as few as the replies need, each carrying up to 100 of them.
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type IncomingHttpHeaders,
} from 'node:http2';
import type { Dispatcher } from 'undici';

/** A request body as ModelStream hands it over: bytes, or a Blob-like object read once (OnceBody). */
type Body = string | Uint8Array | { size: number; arrayBuffer(): Promise<ArrayBuffer> } | null | undefined;

/** One connection, with the streams it carries (ours to count: Node's figure lags while it connects). */
interface Session {
  readonly session: ClientHttp2Session;
  streams: number;
  /** False once it is going away (GOAWAY, an error, closed): no new stream goes to it. */
  usable: boolean;
  idle: NodeJS.Timeout | null;
}

const kRequest = Symbol('h2Request');
type Stream = ClientHttp2Stream & { [kRequest]?: H2Request };

/** One request on a stream: what the stream's (shared) listeners report to. */
class H2Request {
  done = false;
  stream: Stream | null = null;

  constructor(
    readonly handler: Dispatcher.DispatchHandler,
    readonly owner: Session,
    readonly client: H2Client,
  ) {}

  /** Closes the stream (RST_STREAM CANCEL): the provider stops generating. Called by the handler. */
  readonly abort = (): void => {
    if (this.done) return;
    this.done = true;
    const s = this.stream;
    if (s && !s.destroyed) s.close(constants.NGHTTP2_CANCEL);
  };

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.handler.onError?.(err);
  }
}

// The stream's listeners are shared by every stream (each finds its request on the stream):
// a held reply keeps no closure of its own for them.
function onResponse(this: Stream, headers: IncomingHttpHeaders): void {
  const r = this[kRequest]!;
  if (r.done) return;
  const status = Number(headers[':status']);
  const raw: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) raw.push(name, String(v));
  }
  const resume = () => {
    this.resume();
  };
  // undici's handler types say Buffers; ours reads names and values with String() (rawHeader).
  if (r.handler.onHeaders?.(status, raw as unknown as Buffer[], resume, '') === false) this.pause();
}

function onData(this: Stream, chunk: Buffer): void {
  const r = this[kRequest]!;
  if (r.done) return;
  if (r.handler.onData?.(chunk) === false) this.pause();
}

function onEnd(this: Stream): void {
  const r = this[kRequest]!;
  if (r.done) return;
  r.done = true;
  r.handler.onComplete?.([]);
}

function onError(this: Stream, err: Error): void {
  this[kRequest]!.fail(err);
}

function onClose(this: Stream): void {
  const r = this[kRequest]!;
  r.client.streamClosed(r.owner);
  // Closed without an end or an error of its own (a reset with NO_ERROR, the session gone).
  if (!r.done) r.fail(new Error(`HTTP/2 stream closed (code ${this.rstCode ?? 'none'})`));
}

/**
 * HTTP/2 connections to one provider, on node:http2 (h2c with prior knowledge over http:, ALPN
 * over https:), each carrying up to `streams` replies; the dispatcher ModelStream talks to, in
 * undici's handler interface.
 *
 * A request goes to the first connection that can take a stream: up or still connecting (Node
 * sends a connecting session's requests once it is up), not going away, with fewer than `streams`
 * of ours and fewer than the provider's own limit. When none can, it opens a connection. So a
 * burst that starts before any connection is up shares one, and 250 held replies use 3
 * connections. A connection that goes away (GOAWAY, reset, error) takes no new streams; its
 * running streams end as Node ends them, and a reply that failed before its first token is
 * retried by ModelStream, on another connection. A connection with no stream for `idleMs` is
 * closed.
 *
 * Not undici: its HTTP/2 client kept ~1.8 KB per held reply (a request object with its header and
 * body copies, five wrapped listeners, a pool entry) and, in its pool, opened one connection per
 * request while a connection was opening (see the git history of h2-pool.ts).
 */
export class H2Client implements Pick<Dispatcher, 'dispatch'> {
  private readonly sessions: Session[] = [];

  constructor(
    private readonly origin: string,
    private readonly streams: number,
    private readonly idleMs: number,
  ) {}

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const owner = this.pick();
    owner.streams++;
    this.busy(owner);
    const r = new H2Request(handler, owner, this);
    handler.onConnect?.(r.abort);
    if (r.done) {
      this.streamClosed(owner);
      return true;
    }
    const headers: Record<string, string | number> = {
      ':method': opts.method,
      ':path': opts.path,
    };
    for (const [name, value] of Object.entries((opts.headers ?? {}) as Record<string, string>))
      headers[name.toLowerCase()] = value;
    const body = opts.body as Body;
    const size =
      body == null
        ? 0
        : typeof body === 'string'
          ? Buffer.byteLength(body)
          : 'size' in body
            ? body.size
            : body.length;
    headers['content-length'] = size;
    let stream: Stream;
    try {
      stream = owner.session.request(headers, { endStream: size === 0 });
    } catch (err) {
      // The session cannot take a stream (going away, out of stream ids): it takes no more, and
      // this reply fails (and is retried, on another connection) on its own.
      this.retire(owner);
      this.streamClosed(owner);
      process.nextTick(() => r.fail(err as Error));
      return true;
    }
    r.stream = stream;
    stream[kRequest] = r;
    stream.on('response', onResponse);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
    if (size > 0) send(stream, body!);
    return true;
  }

  /** A stream of `owner` closed: a connection left with none is closed after `idleMs`. */
  streamClosed(owner: Session): void {
    if (--owner.streams > 0) return;
    owner.session.unref();
    if (owner.usable && !owner.idle) {
      owner.idle = setTimeout(() => {
        owner.idle = null;
        if (owner.streams === 0) this.retire(owner);
      }, this.idleMs);
      owner.idle.unref();
    }
  }

  private busy(owner: Session): void {
    if (owner.streams === 1) owner.session.ref();
    if (owner.idle) {
      clearTimeout(owner.idle);
      owner.idle = null;
    }
  }

  private pick(): Session {
    for (const s of this.sessions) {
      if (!s.usable || s.session.closed || s.session.destroyed) continue;
      const theirs = s.session.remoteSettings?.maxConcurrentStreams ?? this.streams;
      if (s.streams < Math.min(this.streams, theirs)) return s;
    }
    return this.open();
  }

  private open(): Session {
    const session = connect(this.origin);
    const s: Session = { session, streams: 0, usable: true, idle: null };
    this.sessions.push(s);
    session.on('goaway', () => this.retire(s));
    // Node closes the session after an error; its streams get it (or a cancel whose cause it is).
    session.on('error', () => this.retire(s));
    session.on('close', () => {
      this.retire(s);
      const i = this.sessions.indexOf(s);
      if (i !== -1) this.sessions.splice(i, 1);
    });
    session.unref();
    return s;
  }

  /** No new stream goes to `s`; once its running streams end, it closes. */
  private retire(s: Session): void {
    if (s.idle) clearTimeout(s.idle);
    s.idle = null;
    if (!s.usable) return;
    s.usable = false;
    if (!s.session.closed && !s.session.destroyed) s.session.close();
  }
}

/** Writes the body and ends the request; a Blob-like body gives its bytes away as it is read. */
function send(stream: Stream, body: NonNullable<Body>): void {
  if (typeof body === 'string' || body instanceof Uint8Array) {
    stream.end(body);
    return;
  }
  body.arrayBuffer().then(
    (bytes) => {
      if (!stream.destroyed) stream.end(Buffer.from(bytes));
    },
    (err: Error) => stream.destroy(err),
  );
}
