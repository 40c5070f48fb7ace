// `npm run token`: the printed token is accepted by the server as the named user.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from './support/app.js';
import { createTestDb, type TestDb } from './support/backends.js';

const run = promisify(execFile);
const SECRET = 'token-script-secret-0123456789';
let tdb: TestDb;

async function token(args: string[], env: Record<string, string>) {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/token.ts', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  return stdout.trim();
}

beforeAll(async () => {
  tdb = await createTestDb();
});
afterAll(async () => {
  await tdb?.drop();
});

describe('npm run token', () => {
  it('prints a short-lived HS256 token the server accepts as that user', async () => {
    const jwt = await token(['alice', '--ttl', '600', '--email', 'alice@example.org'], {
      JWT_SECRET: SECRET,
    });
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ sub: 'alice', aud: 'authenticated', email: 'alice@example.org' });
    expect(claims.exp - claims.iat).toBe(600);

    const app = await createTestApp({ db: tdb.handle, redis: null, env: { JWT_SECRET: SECRET } });
    try {
      const auth = { authorization: `Bearer ${jwt}` };
      const turn = await app.inject({
        method: 'POST',
        url: '/api/v1/chat/message',
        headers: auth,
        payload: { message: 'olá' },
      });
      expect(turn.statusCode).toBe(200);
      const list = await app.inject({ url: '/api/v1/chat/sessions', headers: auth });
      expect(list.json().sessions).toEqual([
        expect.objectContaining({ id: turn.json().session_id, user_id: 'alice' }),
      ]);
      // Another secret's server refuses it: the token is really signed with JWT_SECRET.
      const other = await createTestApp({
        db: tdb.handle,
        redis: null,
        env: { JWT_SECRET: 'a-different-secret-0123456789' },
      });
      try {
        expect((await other.inject({ url: '/api/v1/chat/sessions', headers: auth })).statusCode).toBe(401);
      } finally {
        await other.close();
      }
    } finally {
      await app.close();
    }
  });

  it('fails with a readable line when no secret is configured', async () => {
    await expect(token(['alice'], {})).rejects.toMatchObject({
      stderr: expect.stringContaining('set JWT_SECRET'),
    });
  });
});
