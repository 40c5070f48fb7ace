// One rule for all stored text: what Postgres cannot store exactly is refused at validation (422).
//
// Postgres `text` and `jsonb` cannot hold U+0000, and `jsonb` refuses a lone UTF-16 surrogate
// (`\ud800`) that JSON.stringify writes for a broken pair; in `text` the driver would silently turn
// one into U+FFFD. Neither is something a person typed, so the request is refused with a 422
// naming the field — never stripped (the chat stores a message exactly as sent) and never left to
// the database, where it would surface as a 500 after validation accepted it.
import type { z } from 'zod';

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string cannot be stored as sent, or null when it can. */
export function unstorable(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain the NUL character (U+0000)';
  if (LONE_SURROGATE.test(s)) return 'must be valid Unicode (a lone UTF-16 surrogate was sent)';
  return null;
}

/** The first unstorable string in a JSON value (keys included), with its path. */
export function unstorableIn(
  value: unknown,
  path: PropertyKey[] = [],
): { path: PropertyKey[]; why: string } | null {
  if (typeof value === 'string') {
    const why = unstorable(value);
    return why ? { path, why } : null;
  }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = unstorableIn(item, [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const why = unstorable(k);
      if (why) return { path: [...path, k], why: `key ${why}` };
      const found = unstorableIn(v, [...path, k]);
      if (found) return found;
    }
  }
  return null;
}

/** Adds the stored-text rule to a string schema. */
export function storedText<T extends z.ZodType<string>>(schema: T) {
  return schema.superRefine((s, ctx) => {
    const why = unstorable(s);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  });
}

/** Adds the stored-text rule, for every key and string value, to a JSON (jsonb) schema. */
export function storedJson<T extends z.ZodType>(schema: T) {
  return schema.superRefine((value, ctx) => {
    const found = unstorableIn(value);
    if (found) ctx.addIssue({ code: 'custom', message: found.why, path: found.path });
  });
}

const ANY_SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * Text a model produced, made storable: NUL dropped, a lone surrogate replaced by U+FFFD. Unlike a
 * request (refused with a 422), a reply cannot be sent back; what the client is streamed and what
 * the row stores must be the same text, so it is made storable before either sees it.
 */
export function storableText(s: string): string {
  const nul = s.includes('\u0000');
  if (!nul && !ANY_SURROGATE.test(s)) return s;
  const out = nul ? s.replaceAll('\u0000', '') : s;
  return out.replace(LONE_SURROGATES, '\uFFFD');
}
