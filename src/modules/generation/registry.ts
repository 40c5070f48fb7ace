// The generations this instance runs: lookup for resume and stop, per-user counts, drain on shutdown.
import type { AbortReason, Generation } from './generation.js';

export interface GenerationRegistry {
  add(gen: Generation): void;
  get(messageId: string): Generation | undefined;
  runningFor(userKey: string): number;
  running(): Generation[];
  stop(messageId: string, reason: AbortReason): boolean;
  /** Waits for running generations up to `graceMs`, then aborts the rest as interrupted. */
  drain(graceMs: number): Promise<void>;
}

export interface RegistryOptions {
  /** How long a finished generation stays resumable from memory. */
  retainMs: number;
  maxRetained: number;
  userKey(gen: Generation): string;
}

export function createRegistry(opts: RegistryOptions): GenerationRegistry {
  const live = new Map<string, Generation>();
  const finished = new Map<string, { gen: Generation; until: number }>();
  const perUser = new Map<string, number>();

  const retire = (gen: Generation) => {
    live.delete(gen.messageId);
    const key = opts.userKey(gen);
    const n = (perUser.get(key) ?? 1) - 1;
    if (n <= 0) perUser.delete(key);
    else perUser.set(key, n);
    const id = gen.messageId;
    finished.set(id, { gen, until: Date.now() + opts.retainMs });
    // Oldest first: drop what expired or overflows (the timer-free way keeps no closure per reply alive).
    for (const [k, v] of finished) {
      if (finished.size <= opts.maxRetained && v.until > Date.now()) break;
      finished.delete(k);
    }
  };

  return {
    add(gen) {
      live.set(gen.messageId, gen);
      const key = opts.userKey(gen);
      perUser.set(key, (perUser.get(key) ?? 0) + 1);
      gen.whenDone(retire);
    },
    get(id) {
      const done = finished.get(id);
      if (done && done.until <= Date.now()) finished.delete(id);
      return live.get(id) ?? (done && done.until > Date.now() ? done.gen : undefined);
    },
    runningFor: (key) => perUser.get(key) ?? 0,
    running: () => [...live.values()],
    stop(messageId, reason) {
      const gen = live.get(messageId);
      if (!gen || gen.ended) return false;
      gen.abort(reason);
      return true;
    },
    async drain(graceMs) {
      const all = [...live.values()];
      if (all.length === 0) return;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([Promise.allSettled(all.map((g) => g.done)), deadline]);
      clearTimeout(timer);
      const rest = [...live.values()];
      for (const g of rest) g.abort('interrupted');
      await Promise.allSettled(rest.map((g) => g.done));
    },
  };
}
