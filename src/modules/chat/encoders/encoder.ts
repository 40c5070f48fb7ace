// A wire protocol for a reply: typed entries in, whole frames out (one string per batch, so bursts share a write).
import type { ReplyStream } from '../../generation/replies.js';

export interface Encoder {
  /** Headers the protocol adds to the event-stream response. */
  headers?: Record<string, string>;
  /**
   * Frames for the entries of `stream`. When reading the reply fails midway, the encoder ends its
   * stream the protocol's way (an error frame) after calling `onError`.
   */
  encode(stream: ReplyStream, onError: (err: unknown) => void): AsyncIterable<string>;
}
