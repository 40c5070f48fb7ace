// File descriptors: the soft `nofile` limit raised to the hard one at start, and a guard that
// refuses new turns while the process is near the limit (an admitted reply must not die on EMFILE).
import { spawnSync } from 'node:child_process';
import { readdir, readFileSync } from 'node:fs';
import type { Logger } from 'pino';

export interface NofileLimit {
  soft: number;
  hard: number;
}

/** This process's `nofile` limits, from /proc (Linux); null elsewhere or when unlimited. */
export function readNofile(pid: number | 'self' = 'self'): NofileLimit | null {
  try {
    const line = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return line ? { soft: Number(line[1]), hard: Number(line[2]) } : null;
  } catch {
    return null;
  }
}

/**
 * Raises the soft `nofile` limit to the hard one. Node has no setrlimit, so util-linux's `prlimit`
 * sets it on this process from outside (allowed without privileges: same user, not above the hard
 * limit). Where it is missing the soft limit stays and the guard below works against it.
 */
export function raiseNofile(log: Pick<Logger, 'info' | 'warn'>): NofileLimit | null {
  const before = readNofile();
  if (!before || before.soft >= before.hard) return before;
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${before.hard}:${before.hard}`], {
    stdio: 'ignore',
    timeout: 5000,
  });
  const after = readNofile();
  if (after && after.soft > before.soft)
    log.info({ from: before.soft, to: after.soft }, 'raised nofile limit');
  else
    log.warn(
      { soft: before.soft, hard: before.hard, err: r.error?.message ?? `prlimit exit ${r.status}` },
      'could not raise the soft nofile limit; new turns are refused near it',
    );
  return after;
}

export interface DescriptorGuard {
  /** True while a new reply could push the process past its limit. */
  full(): boolean;
  /** Counts an admitted reply until the next sample sees its sockets. */
  admitted(): void;
  stop(): void;
}

export interface DescriptorGuardOptions {
  /** The soft limit; null: no guard (not Linux). */
  limit: number | null;
  /** Descriptors kept free for what admitted work still opens (database pool, Redis, followers). */
  headroom: number;
  /** Descriptors one live reply holds: the client's socket and one to the model. */
  perReply?: number;
  sampleMs?: number;
}

/**
 * Counts /proc/self/fd on a timer (a readdir per turn would cost more than the turn), and adds the
 * replies admitted since the last count at their cost, so a burst between samples cannot overshoot.
 */
export function createDescriptorGuard(opts: DescriptorGuardOptions): DescriptorGuard {
  const limit = opts.limit;
  if (!limit) return { full: () => false, admitted() {}, stop() {} };
  const perReply = opts.perReply ?? 2;
  let open = 0;
  let since = 0;
  let sampling = false;
  const sample = () => {
    if (sampling) return;
    sampling = true;
    const pending = since;
    readdir('/proc/self/fd', (err, names) => {
      sampling = false;
      if (err) return;
      open = names.length;
      // Replies admitted while the directory was read may or may not be in it: counted again (safe side).
      since -= pending;
    });
  };
  sample();
  const timer = setInterval(sample, opts.sampleMs ?? 1000);
  timer.unref();
  return {
    full: () => open + since * perReply + opts.headroom >= limit,
    admitted() {
      since++;
    },
    stop: () => clearInterval(timer),
  };
}
