// Every table of the app, for Drizzle's typed queries and drizzle-kit's migrations.

export * from './academy.js';
export * from './chat.js';
export * from './investigations.js';
