// Compiles to dist/ only when the sources changed since the last build (npm start, tests).
// Builds go to a temporary folder that replaces dist/ under a lock, so two starts in one folder
// never read a half-written dist/, and a start with nothing to build takes no lock at all.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const stampFile = join(dist, '.build-stamp');
const lockDir = join(root, '.dist-lock');
const INPUTS = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

/** A fingerprint of every compiler input: path, size and mtime (an edit, an added or a deleted file). */
function fingerprint() {
  const hash = createHash('sha256');
  const walk = (rel) => {
    const abs = join(root, rel);
    if (!existsSync(abs)) return;
    const st = statSync(abs);
    if (st.isDirectory()) {
      for (const name of readdirSync(abs).sort()) walk(join(rel, name));
    } else {
      hash.update(`${rel}\0${st.size}\0${st.mtimeMs}\n`);
    }
  };
  for (const input of INPUTS) walk(input);
  return hash.digest('hex');
}

const upToDate = (print) =>
  existsSync(join(dist, 'src', 'server.js')) &&
  existsSync(stampFile) &&
  readFileSync(stampFile, 'utf8').trim() === print;

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** mkdir is atomic: the one that creates the folder builds; the others wait for it to go. */
async function withLock(work) {
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lockDir, 'pid'), 'utf8'));
      } catch {}
      // A builder killed mid-build leaves its lock: take it over once its pid is gone (or, if it
      // died before writing its pid, once the lock is older than any build).
      const orphan =
        !owner && Date.now() - (statSync(lockDir, { throwIfNoEntry: false })?.mtimeMs ?? 0) > 120_000;
      if ((owner && !alive(owner)) || orphan) rmSync(lockDir, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  writeFileSync(join(lockDir, 'pid'), String(process.pid));
  try {
    return await work();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function build(print) {
  const tmp = join(root, `.dist-build-${process.pid}`);
  const old = join(root, `.dist-old-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  process.stderr.write('sources changed since the last build; compiling to dist/…\n');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  // The temporary folder sits beside dist/ at the same depth, so the source maps' paths hold.
  const result = spawnSync(
    process.execPath,
    [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', tmp],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  if (result.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error('the build failed (see above); dist/ is unchanged');
  }
  writeFileSync(join(tmp, '.build-stamp'), `${print}\n`);
  // Two renames: the old dist/ is gone only for the instant between them, and every start
  // that could look at it then is waiting on the lock.
  if (existsSync(dist)) renameSync(dist, old);
  renameSync(tmp, dist);
  rmSync(old, { recursive: true, force: true });
}

/** Builds dist/ if the sources changed; resolves once dist/ is complete and current. */
export async function buildIfStale() {
  if (upToDate(fingerprint())) return;
  await withLock(async () => {
    const print = fingerprint();
    // Another start may have built while we waited for the lock.
    if (!upToDate(print)) build(print);
  });
}

export const serverEntry = join(dist, 'src', 'server.js');

// Run directly (`node scripts/build-if-stale.mjs`): build if needed and exit.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    await buildIfStale();
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  }
}
