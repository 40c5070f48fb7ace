// Mints access tokens like Supabase's, and serves a real JWKS over HTTP that can hang, fail or go down.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWTPayload, SignJWT, UnsecuredJWT } from 'jose';

/** Claims over the defaults (`aud: authenticated`, `role: authenticated`, `iat`, `exp` in 1 h); `undefined` drops one. */
export type Claims = Record<string, unknown>;

export interface SignOptions {
  /** Protected-header `kid`; defaults to the server's key id for that algorithm. */
  kid?: string;
  /** Extra protected-header fields. */
  header?: Record<string, unknown>;
}

export interface Jwks {
  /** Use as SUPABASE_URL. */
  url: string;
  /** `url + '/auth/v1'`, the issuer Supabase puts in `iss`; set by default on tokens signed here. */
  issuer: string;
  signES256(claims: Claims, opts?: SignOptions): Promise<string>;
  signRS256(claims: Claims, opts?: SignOptions): Promise<string>;
  /** While on, requests are accepted and never answered (the timeout case). */
  hang(on: boolean): void;
  /** While set, the key set answers with this status instead of 200 (e.g. 503). */
  failWith(status: number | null): void;
  /** How many times the key set was requested. */
  fetches(): number;
  /** Stops the server and drops hanging connections; later fetches are refused. */
  close(): Promise<void>;
}

const nowS = () => Math.floor(Date.now() / 1000);

function claimsSet(claims: Claims): JWTPayload {
  const merged: Claims = {
    aud: 'authenticated',
    role: 'authenticated',
    iat: nowS(),
    exp: nowS() + 3600,
    ...claims,
  };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  return merged as JWTPayload;
}

async function sign(alg: string, key: CryptoKey | Uint8Array, claims: Claims, opts?: SignOptions) {
  return new SignJWT(claimsSet(claims))
    .setProtectedHeader({ typ: 'JWT', ...opts?.header, alg, ...(opts?.kid ? { kid: opts.kid } : {}) })
    .sign(key);
}

/** A token signed with an HS256 secret (SUPABASE_JWT_SECRET or JWT_SECRET); no `iss` unless given. */
export function signHS256(secret: string, claims: Claims, opts?: SignOptions): Promise<string> {
  return sign('HS256', new TextEncoder().encode(secret), claims, opts);
}

/** An `alg: none` token, which must never be accepted. */
export function unsignedToken(claims: Claims): string {
  return new UnsecuredJWT(claimsSet(claims)).encode();
}

/** Starts a JWKS server on 127.0.0.1 with one ES256 key (`kid` "es-1") and one RS256 key ("rs-1"). */
export async function startJwks(): Promise<Jwks> {
  const es = await generateKeyPair('ES256');
  const rs = await generateKeyPair('RS256');
  const keys = [
    { ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES256', use: 'sig' },
    { ...(await exportJWK(rs.publicKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' },
  ];
  let hanging = false;
  let failStatus: number | null = null;
  let count = 0;
  const held: ServerResponse[] = [];

  const server = createServer((req, res) => {
    if (req.url !== '/auth/v1/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    count++;
    if (hanging) {
      held.push(res);
      return;
    }
    if (failStatus !== null) {
      res.writeHead(failStatus, { 'content-type': 'text/plain' }).end('upstream trouble');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${url}/auth/v1`;

  return {
    url,
    issuer,
    signES256: (claims, opts) =>
      sign('ES256', es.privateKey, { iss: issuer, ...claims }, { kid: 'es-1', ...opts }),
    signRS256: (claims, opts) =>
      sign('RS256', rs.privateKey, { iss: issuer, ...claims }, { kid: 'rs-1', ...opts }),
    hang(on) {
      hanging = on;
      if (!on) for (const res of held.splice(0)) res.destroy();
    },
    failWith(status) {
      failStatus = status;
    },
    fetches: () => count,
    async close() {
      for (const res of held.splice(0)) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
