// Child servers for the benchmarks: spawn on 127.0.0.1, wait until they answer, read their CPU, stop them.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { sleep } from './stats.js';

export interface Child {
  name: string;
  pid: number;
  port: number;
  base: string;
  proc: ChildProcess;
  /** The last lines the child wrote to stderr/stdout, for error messages. */
  tail(): string;
  stop(): Promise<void>;
}

/** A port the kernel just handed out; closed again so the child can bind it. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

// Only what a server needs: the bench's own shell may carry DATABASE_URL or a model key.
function baseEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'];
  return Object.fromEntries(keep.flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
}

export interface SpawnOptions {
  name: string;
  /** Arguments to `node`, e.g. ['dist/src/server.js'] or ['--import', 'tsx', 'bench/floor.ts']. */
  args: string[];
  env: Record<string, string>;
  port: number;
  cwd?: string;
  readyTimeoutMs?: number;
}

function probe(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(1000, () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

export async function spawnServer(opts: SpawnOptions): Promise<Child> {
  const proc = spawn(process.execPath, opts.args, {
    cwd: opts.cwd,
    env: { ...baseEnv(), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (buf: Buffer) => {
    lines.push(...buf.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const base = `http://127.0.0.1:${opts.port}`;
  const child: Child = {
    name: opts.name,
    pid: proc.pid!,
    port: opts.port,
    base,
    proc,
    tail: () => lines.join('\n'),
    async stop() {
      if (exited) return;
      proc.kill('SIGTERM');
      const hard = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      await exit;
      clearTimeout(hard);
    },
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${opts.name} exited during start:\n${child.tail()}`);
    if ((await probe(`${base}/health`)) === 200) return child;
    await sleep(100);
  }
  await child.stop();
  throw new Error(`${opts.name} did not answer /health within the deadline:\n${child.tail()}`);
}

let ticksPerSecond: number | undefined;

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on nearly every Linux). */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU seconds (user + system, all threads) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // The command name may contain spaces; the fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / clockTicks();
}

/** Jiffies the whole machine spent busy and in total, from the first line of /proc/stat. */
export function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}
