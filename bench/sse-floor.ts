// The reference floor for held streams: a bare node:http server holding SSE responses open, one
// `start` event each and a heartbeat comment while idle (one shared timer), nothing else. What it
// costs per stream is Node's own HTTP objects (socket, parser, IncomingMessage, ServerResponse),
// below which no server built on node:http can go. bench/held.ts runs it compiled, like our server.
// Run: PORT=<port> node dist/bench/sse-floor.js   (answers GET /health and any path as an SSE stream)
import { createServer, type ServerResponse } from 'node:http';

const heartbeatMs = Number(process.env.SSE_HEARTBEAT_MS ?? 15_000);
const open = new Set<ServerResponse>();
let seq = 0;

const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.end('ok');
    return;
  }
  req.resume();
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  res.write(`id: 0-1\ndata: {"type":"start","message_id":"floor-${++seq}"}\n\n`);
  open.add(res);
  res.on('close', () => open.delete(res));
});
setInterval(() => {
  for (const res of open) res.write(': ping\n\n');
}, heartbeatMs).unref();
server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
