// A wire protocol for a reply: typed entries in, whole frames out (one string per batch, so bursts share a write).
import type { StreamEntry } from '../../generation/events.js';

/** One stream's framing: called with each batch as it comes, then once at the end. */
export interface Framer {
  /** The frames of one batch of the reply's entries, as one piece of text. */
  batch(entries: readonly StreamEntry[]): string;
  /**
   * The frames that end the stream (may be empty): after the reply's terminal event, when the
   * subscriber left, or when reading the reply failed midway (`failed`: the protocol's error frame).
   */
  end(failed: boolean): string;
}

export interface Encoder {
  /** Headers the protocol adds to the event-stream response. */
  headers?: Record<string, string>;
  /**
   * A framer for one stream. Functions called per batch rather than an async generator over the
   * reply: a held stream keeps no suspended generator, its registers and its promises.
   */
  open(): Framer;
}
