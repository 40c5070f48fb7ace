// One process per PGlite folder: a lock file holding the owner's pid, and readable errors for bad folders.
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readFileSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { StartupError } from '../config.js';

// Inside the folder (PGlite ignores it), so a folder that is itself a volume's mount point works.
const LOCK_NAME = 'cidadao-api.lock';

interface LockOwner {
  pid: number;
  host: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): LockOwner | null {
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    return typeof owner.pid === 'number' ? { pid: owner.pid, host: String(owner.host ?? '') } : null;
  } catch {
    return null; // gone, or half-written by a process that died while writing it
  }
}

/**
 * Another process on this machine holds the folder. A lock from another host (the container of
 * an earlier deploy, whose volume we now mount) or from a dead pid is stale; so is our own pid
 * (a restarted container often reuses the pid of the one before).
 */
function heldByOther(owner: LockOwner | null): owner is LockOwner {
  return !!owner && owner.host === hostname() && owner.pid !== process.pid && alive(owner.pid);
}

function tryCreate(file: string): boolean {
  try {
    const fd = openSync(file, 'wx');
    try {
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Replaces a stale lock; a side directory makes two processes taking it over at once take turns. */
function takeOver(file: string, stale: LockOwner | null): boolean {
  const guard = `${file}.takeover`;
  try {
    mkdirSync(guard);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // A taker that died mid-takeover leaves the guard behind; it is only ever held for microseconds.
    if (Date.now() - statSync(guard).mtimeMs > 10_000) rmdirSync(guard);
    return false;
  }
  try {
    const now = readOwner(file);
    if (now && stale && (now.pid !== stale.pid || now.host !== stale.host)) return false;
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return tryCreate(file);
  } finally {
    rmdirSync(guard);
  }
}

function describeFsError(dir: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const reason =
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? 'is not writable by this process'
      : code === 'ENOTDIR' || code === 'EEXIST'
        ? 'is not a directory (or sits under a file)'
        : `cannot be used (${code ?? (err instanceof Error ? err.message : String(err))})`;
  return `PGLITE_DIR ${dir} ${reason}: point PGLITE_DIR at a writable folder or set DATABASE_URL`;
}

/**
 * Creates the folder if needed and locks it for this process; returns the release function.
 * Throws a StartupError (one line naming the folder) when it is unusable or in use.
 */
export function lockPgliteDir(dir: string): () => void {
  const abs = resolve(dir);
  try {
    mkdirSync(abs, { recursive: true });
    accessSync(abs, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new StartupError(describeFsError(abs, err));
  }
  const file = join(abs, LOCK_NAME);
  for (let attempt = 0; attempt < 50; attempt++) {
    let created: boolean;
    try {
      created = tryCreate(file);
      if (!created) {
        const owner = readOwner(file);
        if (heldByOther(owner)) {
          throw new StartupError(
            `PGLITE_DIR ${abs} is in use by another process (pid ${owner.pid}): one folder serves one process; stop it, or set another PGLITE_DIR or DATABASE_URL`,
          );
        }
        created = takeOver(file, owner);
      }
    } catch (err) {
      if (err instanceof StartupError) throw err;
      throw new StartupError(describeFsError(abs, err));
    }
    if (created) {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off('exit', release);
        if (readOwner(file)?.pid === process.pid) unlinkSync(file);
      };
      // A crash leaves the file behind; the next start finds its pid dead and takes over.
      process.on('exit', release);
      return release;
    }
  }
  throw new StartupError(`PGLITE_DIR ${abs}: could not take its lock file ${file}`);
}

/** A PGlite that failed to open its folder, as one line naming the folder. */
export function describePgliteOpenError(dir: string, err: unknown): StartupError {
  const abs = resolve(dir);
  const message = err instanceof Error ? err.message : String(err);
  const kind = err instanceof Error ? err.constructor.name : '';
  if (/Aborted|unreachable/i.test(message) || kind === 'RuntimeError') {
    return new StartupError(
      `PGLITE_DIR ${abs} holds a database PGlite cannot open (corrupted, or written by another PGlite version): move it away to start empty, or restore it`,
    );
  }
  return new StartupError(`PGLITE_DIR ${abs} could not be opened: ${message || 'unknown error'}`);
}
