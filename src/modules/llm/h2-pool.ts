// The connections to an HTTP/2 provider: as few as the replies need, one opened at a time.
import type { Client as ClientType, Dispatcher } from 'undici';
// The client alone, as openai.ts loads the Agent alone: undici's index loads all of undici.
import Client from 'undici/lib/dispatcher/client.js';

type Pending = [Dispatcher.DispatchOptions, Dispatcher.DispatchHandler];

/**
 * HTTP/2 connections to one provider, each carrying up to `streams` replies.
 *
 * undici's own pool counts a client that is still connecting as busy. It then gives the next
 * request to a new client, so every reply that starts while a connection is being opened opens
 * another connection. That happens at a cold start (a deploy, a restart), and in a burst past what
 * the open connections carry. 250 replies at once on one warm connection opened 152 connections,
 * where 3 carry them. A gate in front of the pool could not fix it: the pool's record of which
 * client is full lags when many requests are handed over at once, and it queued requests on a
 * full connection.
 *
 * So this pool picks the connection itself, from each client's own figures:
 * - A request goes to the first connection that is up with a free stream.
 * - When none has one, the request opens a new connection, and the requests after it wait for
 *   that connection instead of opening their own.
 * - When the connection is up, the waiting requests fill it, and the first one that finds it
 *   full opens the next.
 * - When the connection fails, its requests fail with undici's error and retry on the model
 *   client's terms. The waiting ones go on: the first of them opens a connection again.
 * - A connection that closes (idle timeout, GOAWAY, reset) leaves the pool. Its running
 *   streams end as undici ends them.
 *
 * A reply's connect clock (ModelStream) runs while it waits, as it would while its own
 * connection opened. `streams` is what the pool puts on one connection (100). A provider that
 * allows fewer concurrent streams makes the replies past its limit wait on that connection
 * for a free stream. nginx allows 128, Go's server 250 and Cloudflare 256.
 */
export class H2Pool implements Pick<Dispatcher, 'dispatch'> {
  private readonly clients: ClientType[] = [];
  private opening: ClientType | null = null;
  private waiting: Pending[] = [];

  constructor(
    private readonly origin: string,
    private readonly options: ClientType.Options,
    private readonly streams: number,
  ) {}

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    for (const c of this.clients) {
      const s = c.stats;
      if (s.connected && s.size < this.streams) {
        c.dispatch(opts, handler);
        return true;
      }
    }
    if (this.opening) {
      this.waiting.push([opts, handler]);
      return true;
    }
    this.open().dispatch(opts, handler);
    return true;
  }

  private open(): ClientType {
    const c = new Client(this.origin, this.options);
    this.opening = c;
    this.clients.push(c);
    const settled = () => {
      if (this.opening !== c) return;
      this.opening = null;
      // After undici resumes the client (it does right after its event): handed over sooner,
      // the requests would be queued behind the one that opened it.
      setImmediate(() => this.release());
    };
    c.on('connect', settled);
    c.on('connectionError', () => {
      this.remove(c);
      settled();
    });
    // Closed for good (idle timeout, GOAWAY, reset): a new request opens a new connection.
    c.on('disconnect', () => {
      this.remove(c);
      settled();
    });
    return c;
  }

  private remove(c: ClientType): void {
    const i = this.clients.indexOf(c);
    if (i === -1) return;
    this.clients.splice(i, 1);
    // Its running streams end as undici ends them; nothing new goes to it.
    c.close().catch(() => {});
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const [opts, handler] of waiting) this.dispatch(opts, handler);
  }
}
