// `npm run token -- <user> [--ttl <seconds>] [--email <address>]`: a short-lived HS256 access token for local use.
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { ConfigError, loadConfig } from '../src/config.js';

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ttl: { type: 'string', default: '3600' },
    email: { type: 'string' },
  },
});

const user = positionals[0];
if (!user) fail('usage: npm run token -- <user id> [--ttl seconds] [--email address]');
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl < 1 || ttl > 7 * 24 * 3600) fail('--ttl must be 1..604800 seconds');

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  fail(err instanceof ConfigError ? err.message : String(err));
}

// The app's own secret verifies without an issuer; the legacy Supabase secret wants Supabase's
// issuer when SUPABASE_URL is set (see src/plugins/auth.ts), so the token carries it then.
const secret = config.JWT_SECRET ?? config.SUPABASE_JWT_SECRET;
if (!secret) fail('set JWT_SECRET (at least 16 characters) in the environment first');
const issuer =
  !config.JWT_SECRET && config.SUPABASE_URL
    ? `${config.SUPABASE_URL.replace(/\/+$/, '')}/auth/v1`
    : undefined;

const jwt = new SignJWT({ role: 'authenticated', ...(values.email ? { email: values.email } : {}) })
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setSubject(user)
  .setAudience('authenticated')
  .setIssuedAt()
  .setExpirationTime(`${ttl}s`);
if (issuer) jwt.setIssuer(issuer);

process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret))}\n`);
