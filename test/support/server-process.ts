// Real server processes (`node dist/src/server.js`, as production runs it) for deployment tests.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const SERVER_JS = join(ROOT, 'dist', 'src', 'server.js');

/** Compiles dist/ if the sources changed (the same script `npm start` uses, under its lock). */
export function ensureBuilt(): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-if-stale.mjs')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  base: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  stderr(): string;
  /** Resolves with the exit code (null after a signal). */
  exited: Promise<number | null>;
  /** Resolves once GET /health/ready answers 200; rejects if the process exits or time runs out. */
  ready(timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

// Variables of the test runner's own environment that would change what a child serves.
const SCRUB = ['DATABASE_URL', 'REDIS_URL', 'TEST_DATABASE_URL', 'TEST_REDIS_URL', 'NODE_ENV', 'PGLITE_DIR'];

/** Starts `node <entry>` with a clean environment plus `env`, on a free port unless env.PORT is set. */
export async function startServer(
  env: Record<string, string>,
  /** wrap: a command that execs node (e.g. `prlimit --nofile=…`), so the pid is still node's. */
  opts: { entry?: string; args?: string[]; cwd?: string; wrap?: string[] } = {},
): Promise<ServerProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const base = { ...process.env };
  for (const k of SCRUB) delete base[k];
  const argv = [process.execPath, ...(opts.args ?? []), opts.entry ?? SERVER_JS];
  const [command, ...rest] = [...(opts.wrap ?? []), ...argv];
  const child = spawn(command!, rest, {
    cwd: opts.cwd ?? ROOT,
    env: { ...base, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => {
    exitCode = c;
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    child,
    pid: child.pid!,
    port,
    base: url,
    output: () => out,
    stderr: () => err,
    exited,
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (exitCode !== undefined) throw new Error(`server exited (${exitCode}) before ready: ${out}`);
        try {
          const r = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2000) });
          if (r.status === 200) return;
        } catch {}
        if (Date.now() > deadline) throw new Error(`server not ready in ${timeoutMs} ms: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exitCode === undefined) child.kill(signal);
      return exited;
    },
  };
}
