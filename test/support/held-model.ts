// A real local OpenAI-compatible model that holds every reply after its first token until released, then finishes them all at once.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HeldModel {
  /** Base URL ending in /v1. */
  url: string;
  /** Replies that got their first token and now wait for the release. */
  held(): number;
  /** Resolves once `n` replies are held; rejects after `timeoutMs`. */
  waitHeld(n: number, timeoutMs: number): Promise<void>;
  /** Finishes every held reply (and every later one at once). */
  release(): void;
  /** Whether replies are released now. */
  isReleased(): boolean;
  /** Holds again: replies from now on wait for the next release. */
  hold(): void;
  close(): Promise<void>;
}

export interface HeldModelOptions {
  /** Tokens sent after the release. */
  tail?: string[];
  /** While held, a token every this many ms (0: silence). */
  trickleMs?: number;
  /** The tail of the n-th request (from 1), when it differs from `tail`. */
  tailFor?(n: number): string[] | undefined;
}

function deferred() {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export async function startHeldModel(opts: HeldModelOptions = {}): Promise<HeldModel> {
  const tail = opts.tail ?? ['e ', 'esta ', 'é ', 'a ', 'resposta ', 'completa, ', 'sem ', 'perdas.'];
  let gate = deferred();
  let held = 0;
  let open_ = false;
  let seq = 0;
  const listeners = new Set<() => void>();
  const open = new Set<ServerResponse>();

  const frame = (id: string, delta: object, finish: string | null, usage?: object) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 0, model: 'm', choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) })}\n\n`;

  async function respond(res: ServerResponse, n: number) {
    const id = `held-${n}`;
    const released = gate.promise;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(frame(id, { role: 'assistant', content: `Olá nº ${n}, ação ` }, null));
    held++;
    for (const l of [...listeners]) l();
    let trickle: NodeJS.Timeout | undefined;
    if (opts.trickleMs) {
      trickle = setInterval(() => res.write(frame(id, { content: '· ' }, null)), opts.trickleMs);
    }
    await released;
    clearInterval(trickle);
    held--;
    if (res.destroyed) return;
    for (const t of opts.tailFor?.(n) ?? tail) res.write(frame(id, { content: t }, null));
    res.write(frame(id, {}, 'stop'));
    res.write(
      frame(id, {}, null, { prompt_tokens: 11, completion_tokens: tail.length + 1, total_tokens: 12 }),
    );
    res.end('data: [DONE]\n\n');
  }

  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404).end();
        return;
      }
      open.add(res);
      res.on('close', () => open.delete(res));
      respond(res, ++seq).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 60_000;
  // Thousands of connections arrive within a second: a short accept backlog would drop SYNs under load.
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    held: () => held,
    waitHeld(n, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (held < n) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`only ${held} of ${n} replies held after ${timeoutMs} ms`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    release() {
      open_ = true;
      gate.resolve();
    },
    isReleased: () => open_,
    hold() {
      open_ = false;
      gate = deferred();
    },
    async close() {
      gate.resolve();
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
