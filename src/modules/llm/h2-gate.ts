// Cold start on an HTTP/2 provider: replies wait for the connection being opened instead of each
// opening one of its own.
import type { Dispatcher } from 'undici';

type Pending = [Dispatcher.DispatchOptions, Dispatcher.DispatchHandler];

/**
 * undici's pool counts a client that is still connecting as busy, so a burst of replies before the
 * first handshake to a provider ends (a deploy, a restart) would open one connection per reply,
 * where HTTP/2 needs one for up to 100 of them. While no connection to the provider is up and one
 * is being opened, this holds the requests that follow and hands them over once it is up (or once
 * it failed: then the next one opens a connection, and the rest wait for that one). A reply's
 * connect clock (ModelStream) runs while it waits, as it would while its own connection opened.
 * Only the first connection is waited for: a burst that fills one (100 streams) still opens
 * several. One instance per provider: its dispatcher talks to one origin.
 */
export class FirstConnectionGate implements Pick<Dispatcher, 'dispatch'> {
  private connected = 0;
  private opening = false;
  private waiting: Pending[] = [];

  constructor(private readonly inner: Dispatcher) {
    inner.on('connect', () => {
      this.connected++;
      // After undici resumes the client that connected (it does right after this event): handed
      // over sooner, the requests would find it busy and open connections of their own.
      setImmediate(() => this.release());
    });
    inner.on('disconnect', () => {
      this.connected = Math.max(0, this.connected - 1);
    });
    inner.on('connectionError', () => setImmediate(() => this.release()));
  }

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.connected > 0) return this.inner.dispatch(opts, handler);
    if (this.opening) {
      this.waiting.push([opts, handler]);
      return true;
    }
    this.opening = true;
    return this.inner.dispatch(opts, handler);
  }

  private release(): void {
    this.opening = false;
    const waiting = this.waiting;
    this.waiting = [];
    for (const [opts, handler] of waiting) this.dispatch(opts, handler);
  }
}
