// The XP ledger (ACADEMY.md §5): append-only awards, each in one transaction behind the user-row lock.
import { sql } from 'drizzle-orm';
import { type Db, rowsOf, type Tx } from '../../db/client.js';
import { AppError } from '../../errors.js';
import { THRESHOLD_BADGES } from './academy.catalog.js';

export type SourceType =
  | 'conversation_started'
  | 'conversation_message'
  | 'conversation_completed'
  | 'mission'
  | 'badge';

export interface AwardEvent {
  amount: number;
  sourceType: SourceType;
  sourceId: string;
  description: string;
  conversationId?: string | null;
}

export interface BadgeRow {
  code: string;
  name: string;
  description: string;
  icon: string;
  color: string | null;
  rarity: string;
  category: string;
  xp_bonus: number;
  is_secret: boolean;
  earned_at?: Date | string;
}

export interface AwardResult {
  /** XP of the given events that this call paid (badge bonuses excluded); 0 for a repeat. */
  xpAwarded: number;
  badges: BadgeRow[];
  totalXp: number;
}

/** A transaction that already holds the user's row lock, and the total it read under it. */
export interface LockedUser {
  tx: Tx;
  userId: string;
  totalXp: number;
}

/**
 * Takes the user's academy row lock in `tx` and reads the total under it; null when the user never
 * enrolled. The lock comes FIRST in every award transaction: a row inserted earlier that references
 * the user holds a key-share lock on it, and two such transactions deadlock on the update. Every
 * award of one user is ordered by this lock.
 */
export async function lockUser(tx: Tx, userId: string): Promise<LockedUser | null> {
  const rows = rowsOf<{ total_xp: number }>(
    await tx.execute(sql`
      update academy_users set updated_at = now() where user_id = ${userId} returning total_xp`),
  );
  return rows[0] ? { tx, userId, totalXp: Number(rows[0].total_xp) } : null;
}

/** Runs `fn` in one transaction that first locks the user's row; ACADEMY_USER_NOT_FOUND if not enrolled. */
export async function withUserLock<T>(db: Db, userId: string, fn: (locked: LockedUser) => Promise<T>) {
  return db.transaction(async (tx) => {
    const locked = await lockUser(tx, userId);
    if (!locked) throw new AppError('ACADEMY_USER_NOT_FOUND');
    return fn(locked);
  });
}

const BADGE_COLS = sql.raw(
  'b.code, b.name, b.description, b.icon, b.color, b.rarity, b.category, b.xp_bonus, b.is_secret',
);

/**
 * Pays `events` (each at most once: the unique source key turns a repeat into a no-op), then the
 * `badges` (each at most once, its bonus paid with it), checking the threshold badges after every
 * payment, bonuses included. Each row's balance_after is the total the user's UPDATE returns.
 */
export async function award(
  locked: LockedUser,
  events: AwardEvent[],
  badges: string[] = [],
): Promise<AwardResult> {
  const { tx, userId } = locked;
  let total = locked.totalXp;
  const result: AwardResult = { xpAwarded: 0, badges: [], totalXp: total };
  const earned = new Set(
    rowsOf<{ badge_code: string }>(
      await tx.execute(sql`select badge_code from academy_user_badges where user_id = ${userId}`),
    ).map((r) => r.badge_code),
  );

  const pay = async (ev: AwardEvent): Promise<boolean> => {
    const rows = rowsOf<{ total_xp: number }>(
      await tx.execute(sql`
        with ins as (
          insert into academy_xp_transactions
            (user_id, amount, balance_after, source_type, source_id, conversation_id, description)
          values (${userId}, ${ev.amount}, ${total + ev.amount}, ${ev.sourceType}, ${ev.sourceId},
                  ${ev.conversationId ?? null}, ${ev.description})
          on conflict (user_id, source_type, source_id) do nothing
          returning 1
        )
        update academy_users set total_xp = total_xp + ${ev.amount}, updated_at = now()
        where user_id = ${userId} and exists (select 1 from ins)
        returning total_xp`),
    );
    if (!rows[0]) return false;
    const after = Number(rows[0].total_xp);
    // Only this transaction may move the total while it holds the lock; anything else is a bug.
    if (after !== total + ev.amount) throw new Error('academy ledger out of step with total_xp');
    total = after;
    await thresholds();
    return true;
  };

  const grant = async (code: string): Promise<void> => {
    if (earned.has(code)) return;
    earned.add(code);
    const rows = rowsOf<BadgeRow>(
      await tx.execute(sql`
        with ins as (
          insert into academy_user_badges (user_id, badge_code)
          select ${userId}, code from academy_badges where code = ${code}
          on conflict (user_id, badge_code) do nothing
          returning badge_code, earned_at
        )
        select ${BADGE_COLS}, ins.earned_at from ins join academy_badges b on b.code = ins.badge_code`),
    );
    const badge = rows[0];
    if (!badge) return;
    result.badges.push(badge);
    if (badge.xp_bonus > 0) {
      await pay({
        amount: badge.xp_bonus,
        sourceType: 'badge',
        sourceId: code,
        description: `Badge conquistado: ${badge.name}`,
      });
    }
  };

  async function thresholds(): Promise<void> {
    for (const t of THRESHOLD_BADGES) if (total >= t.minXp) await grant(t.code);
  }

  for (const ev of events) if (await pay(ev)) result.xpAwarded += ev.amount;
  for (const code of badges) await grant(code);
  result.totalXp = total;
  return result;
}
