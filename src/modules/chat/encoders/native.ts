// The native SSE protocol of API.md §1.1: `id: <cursor>` + one compact `data:` line per event.
import { frame } from '../../../plugins/sse.js';
import { streamFailedEvent } from '../../generation/events.js';
import type { Encoder } from './encoder.js';

export const nativeSse: Encoder = {
  async *encode(stream, onError) {
    try {
      for await (const batch of stream) {
        let text = '';
        for (const entry of batch) text += frame(entry.id, entry.event);
        yield text;
      }
    } catch (err) {
      onError(err);
      yield frame('0-0', streamFailedEvent());
    }
  },
};
