// A slow OpenAI-compatible model in a process of its own, for the held-replies benchmark: each reply
// gets its first token at once, then one every SLOW_TOKEN_MS, and never ends while the bench runs.
// HTTP/1.1 by default; `--h2c` speaks HTTP/2 over cleartext (prior knowledge), as LLM_HTTP2 expects.
// Run: node --import tsx bench/slow-model.ts <port> [--h2c]   (prints "ready" when listening)
import { createServer as createH1 } from 'node:http';
import { createServer as createH2 } from 'node:http2';

const port = Number(process.argv[2] ?? 0);
const h2c = process.argv.includes('--h2c');
const everyMs = Number(process.env.SLOW_TOKEN_MS ?? 10_000);

interface Res {
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(data: string): unknown;
  end(data?: string): unknown;
  on(event: 'close', fn: () => void): unknown;
}

const frame = (content: string) =>
  `data: ${JSON.stringify({ id: 'slow', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

function handle(req: { on(e: string, fn: (...a: unknown[]) => void): unknown; resume(): unknown }, res: Res) {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(frame('Olá, '));
    // A timer per reply (this process is not the one measured): tokens spread as replies opened.
    let n = 0;
    const timer = setInterval(() => res.write(frame(`palavra${++n} `)), everyMs);
    res.on('close', () => clearInterval(timer));
  });
}

const server = h2c
  ? createH2({ settings: { maxConcurrentStreams: 1000 } }, handle as never)
  : createH1({ keepAliveTimeout: 60_000 }, handle as never);
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
