// The load generator: N streamed chat turns at a fixed concurrency over keep-alive node:http sockets.
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface TurnResult {
  ok: boolean;
  /** Request sent → first `data:` line received, in ms. */
  firstEventMs: number;
  /** Request sent → end of the response, in ms. */
  totalMs: number;
  events: number;
  error?: string;
}

export interface LoadResult {
  turns: number;
  ok: number;
  errors: number;
  /** The first few distinct failures, for the report. */
  errorSamples: string[];
  wallMs: number;
  firstEventMs: number[];
  totalMs: number[];
  /** Events per successful turn (min and max), to check both servers stream the same thing. */
  eventsMin: number;
  eventsMax: number;
  /** CPU the client itself used (user + system, ms), to show it is not the bottleneck. */
  clientCpuMs: number;
}

export interface LoadOptions {
  base: string;
  path?: string;
  /** The request body, or a maker of one per turn (a route whose body must differ per turn). */
  body: string | (() => string);
  /** Whether a whole 200 response is a successful turn; default: a native stream ending in `complete`. */
  isComplete?: (text: string) => boolean;
  concurrency: number;
  turns: number;
  /** Stop starting turns after this long, whatever is left. */
  maxMs?: number;
  requestTimeoutMs?: number;
}

const COMPLETE = '"type":"complete"';

/** A native stream whose last event is `complete` and whose last byte ends a block. */
export function nativeComplete(text: string): boolean {
  const lastData = text.lastIndexOf('\ndata: ');
  return lastData >= 0 && text.includes(COMPLETE, lastData) && text.endsWith('\n\n');
}

/** One streamed turn: validates only what is cheap (status, a `complete` last, the final newline). */
export function streamTurn(
  agent: Agent,
  url: URL,
  body: string,
  timeoutMs: number,
  extraHeaders: Record<string, string> = {},
  isComplete: (text: string) => boolean = nativeComplete,
): Promise<TurnResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let first = -1;
    let text = '';
    let settled = false;
    const done = (r: Omit<TurnResult, 'totalMs' | 'firstEventMs'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...r, firstEventMs: first, totalMs: performance.now() - t0 });
    };
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          'content-length': Buffer.byteLength(body),
          ...extraHeaders,
        },
      },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (first < 0 && (text + chunk).includes('data: ')) first = performance.now() - t0;
          text += chunk;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) {
            done({ ok: false, events: 0, error: `HTTP ${res.statusCode}: ${text.slice(0, 200)}` });
            return;
          }
          const ok = isComplete(text);
          const events = text.split('\ndata: ').length - 1;
          done(ok ? { ok, events } : { ok, events, error: `no complete event: …${text.slice(-200)}` });
        });
        res.on('error', (err) => done({ ok: false, events: 0, error: err.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => done({ ok: false, events: 0, error: err.message }));
    req.end(body);
  });
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const url = new URL(opts.path ?? '/api/v1/chat/stream', opts.base);
  const agent = new Agent({
    keepAlive: true,
    maxSockets: opts.concurrency,
    maxFreeSockets: opts.concurrency,
  });
  const timeoutMs = opts.requestTimeoutMs ?? 30_000;
  const first: number[] = [];
  const total: number[] = [];
  const errorSamples: string[] = [];
  let started = 0;
  let ok = 0;
  let errors = 0;
  let eventsMin = Number.POSITIVE_INFINITY;
  let eventsMax = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + (opts.maxMs ?? 120_000);

  const worker = async () => {
    while (started < opts.turns && performance.now() < deadline) {
      started++;
      const body = typeof opts.body === 'string' ? opts.body : opts.body();
      const r = await streamTurn(agent, url, body, timeoutMs, {}, opts.isComplete);
      if (r.ok) {
        ok++;
        first.push(r.firstEventMs);
        total.push(r.totalMs);
        eventsMin = Math.min(eventsMin, r.events);
        eventsMax = Math.max(eventsMax, r.events);
      } else {
        errors++;
        const msg = r.error ?? 'unknown';
        if (errorSamples.length < 5 && !errorSamples.includes(msg)) errorSamples.push(msg);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  return {
    turns: started,
    ok,
    errors,
    errorSamples,
    wallMs,
    firstEventMs: first,
    totalMs: total,
    eventsMin: ok ? eventsMin : 0,
    eventsMax,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  };
}
