// The native SSE protocol of API.md §1.1: `id: <cursor>` + one compact `data:` line per event.
import { frame } from '../../../plugins/sse.js';
import { type ChunkEvent, streamFailedEvent } from '../../generation/events.js';
import type { Encoder, Framer } from './encoder.js';

// The agent id of the last chunk framed, as JSON: a reply's chunks all carry the same one.
let lastAgentId = '';
let lastAgentJson = '""';

/**
 * A chunk's frame, byte for byte what `frame` writes for it (a ChunkEvent is exactly `type`,
 * `content`, `agent_id`, in that order, wherever it is built: chunkEvent(), a Redis log entry, a
 * rebuild), without walking the object: only the content is escaped. Most of a reply's events are chunks.
 */
function chunkFrame(id: string, e: ChunkEvent): string {
  if (e.agent_id !== lastAgentId) {
    lastAgentId = e.agent_id;
    lastAgentJson = JSON.stringify(e.agent_id);
  }
  return `id: ${id}\ndata: {"type":"chunk","content":${JSON.stringify(e.content)},"agent_id":${lastAgentJson}}\n\n`;
}

// Stateless: every stream shares one framer.
const framer: Framer = {
  batch(entries) {
    let text = '';
    for (const entry of entries) {
      const e = entry.event;
      text += e.type === 'chunk' ? chunkFrame(entry.id, e) : frame(entry.id, e);
    }
    return text;
  },
  end: (failed) => (failed ? frame('0-0', streamFailedEvent()) : ''),
};

export const nativeSse: Encoder = { open: () => framer };
