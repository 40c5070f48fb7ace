// Column helpers shared by every table group.
import { timestamp } from 'drizzle-orm/pg-core';

/** Every timestamp is timestamptz, read as a Date. */
export const tstz = () => timestamp({ withTimezone: true, mode: 'date' });
