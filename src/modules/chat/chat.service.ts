// The ChatService for sessions and history: every read and write scoped by the caller.
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors.js';
import * as repo from './chat.repo.js';
import { toMessage, toSession } from './chat.schemas.js';

export interface Caller {
  userId: string | null;
  /** A turn's rate-limit bucket (`u:<id>` / `ip:<addr>`) and where its headers go; HTTP turns only. */
  rateKey?: string;
  setHeaders?(headers: Record<string, string>): void;
}

export interface ChatServiceDeps {
  db: Db;
  restoreDays: number;
}

function encodeCursor(at: Date | string, id: string): string {
  return Buffer.from(JSON.stringify([new Date(at).toISOString(), id])).toString('base64url');
}

function decodeCursor(cursor: string): { at: string; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    if (typeof at !== 'string' || typeof id !== 'string' || Number.isNaN(Date.parse(at)))
      throw new Error('shape');
    return { at, id };
  } catch {
    throw new AppError('VALIDATION_ERROR', 'cursor is not a cursor this server issued', [
      { path: 'cursor', message: 'invalid cursor' },
    ]);
  }
}

export function createChatService(deps: ChatServiceDeps) {
  const { db } = deps;

  async function requireSession(caller: Caller, id: string) {
    const row = await repo.getSession(db, id, caller.userId);
    if (!row) throw new AppError('SESSION_NOT_FOUND');
    return row;
  }

  return {
    async listSessions(caller: Caller, q: { limit: number; offset: number; cursor?: string }) {
      // Anonymous callers have no list: their sessions are capabilities, not an inventory.
      if (!caller.userId)
        return { sessions: [], count: 0, limit: q.limit, offset: q.offset, next_cursor: null };
      const after = q.cursor ? decodeCursor(q.cursor) : undefined;
      const page = await repo.listSessions(db, caller.userId, { limit: q.limit, offset: q.offset, after });
      const last = page.rows.at(-1);
      const more = after ? page.rows.length === q.limit : q.offset + page.rows.length < page.count;
      return {
        sessions: page.rows.map(toSession),
        count: page.count,
        limit: q.limit,
        offset: after ? 0 : q.offset,
        next_cursor: more && last ? encodeCursor(last.last_activity_at, last.id) : null,
      };
    },

    async getSession(caller: Caller, id: string) {
      return toSession(await requireSession(caller, id));
    },

    async renameSession(caller: Caller, id: string, title: string) {
      const row = await repo.renameSession(db, id, caller.userId, title);
      if (!row) throw new AppError('SESSION_NOT_FOUND');
      return toSession(row);
    },

    async deleteSession(caller: Caller, id: string) {
      if (!(await repo.softDeleteSession(db, id, caller.userId))) throw new AppError('SESSION_NOT_FOUND');
    },

    async restoreSession(caller: Caller, id: string) {
      const row = await repo.restoreSession(db, id, caller.userId, deps.restoreDays);
      if (!row) throw new AppError('SESSION_NOT_FOUND');
      return toSession(row);
    },

    async history(caller: Caller, id: string, q: { limit: number; before?: string }) {
      await requireSession(caller, id);
      const rows = await repo.historyPage(db, id, q.limit + 1, q.before ? Number(q.before) : undefined);
      const hasMore = rows.length > q.limit;
      const page = rows.slice(0, q.limit).reverse();
      return {
        session_id: id,
        messages: page.map(toMessage),
        has_more: hasMore,
        next_cursor: hasMore && page[0] ? String(page[0].seq) : null,
      };
    },

    async clearHistory(caller: Caller, id: string) {
      if (!(await repo.clearHistory(db, id, caller.userId))) throw new AppError('SESSION_NOT_FOUND');
    },
  };
}

export type ChatService = ReturnType<typeof createChatService>;

/**
 * For modules whose records own a chat session (academy lessons): create it inside the caller's
 * transaction, so the session and its owner record commit together.
 */
export const openOwnedSession = repo.insertOwnedSession;

/** Message counts of sessions, for modules that show them beside their own records. */
export const sessionMessageCounts = repo.messageCounts;
