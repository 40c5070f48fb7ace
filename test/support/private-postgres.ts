// A Postgres of the test's own (initdb + pg_ctl in a temp folder, on a free port) that it may stop and restart.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './server-process.js';

/** The folder holding initdb and pg_ctl, or null when this machine has no Postgres server binaries. */
export function postgresBinDir(): string | null {
  const candidates: string[] = [];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {}
  if (existsSync('/usr/lib/postgresql')) {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) {
      candidates.push(join('/usr/lib/postgresql', v, 'bin'));
    }
  }
  candidates.push('/usr/local/bin', '/usr/bin');
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}

export interface PrivatePostgres {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** Postgres refuses to run as root: as root, the server runs as the `postgres` user. */
function runner(): { cmd: (bin: string, args: string[]) => [string, string[]]; owner: number | null } {
  if (process.getuid?.() !== 0) return { cmd: (bin, args) => [bin, args], owner: null };
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return {
    cmd: (bin, args) => ['setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', bin, ...args]],
    owner: uid,
  };
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no initdb/pg_ctl on this machine');
  const { cmd, owner } = runner();
  const root = mkdtempSync(join(tmpdir(), 'private-pg-'));
  if (owner !== null) chownSync(root, owner, -1);
  const data = join(root, 'data');
  const port = await freePort();
  const run = (tool: string, args: string[]) => {
    const [c, a] = cmd(join(bin, tool), args);
    execFileSync(c, a, { stdio: 'pipe', cwd: root });
  };
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = async () => run('pg_ctl', ['-D', data, '-o', opts, '-l', join(root, 'log'), '-w', 'start']);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    // "fast": every session is told 57P01 admin_shutdown, as in a restart or a failover.
    stop: async () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']),
    start,
    async destroy() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {}
      rmSync(root, { recursive: true, force: true });
    },
  };
}
