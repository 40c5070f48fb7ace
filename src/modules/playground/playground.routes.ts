// GET /playground: a page (HTML, one script, one stylesheet; no build) to try chat and investigations.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const ASSETS = {
  'index.html': 'text/html; charset=utf-8',
  'playground.js': 'text/javascript; charset=utf-8',
  'playground.css': 'text/css; charset=utf-8',
} as const;

// The page renders model output: even if that output slipped past the Markdown renderer's
// escaping, the browser would refuse inline scripts and foreign origins.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Read once at boot; the build copies ./public next to the compiled module. */
function load(name: keyof typeof ASSETS): string {
  return readFileSync(new URL(`./public/${name}`, import.meta.url), 'utf8');
}

export async function playgroundRoutes(app: FastifyInstance) {
  const files = Object.fromEntries(
    (Object.keys(ASSETS) as Array<keyof typeof ASSETS>).map((name) => [name, load(name)]),
  ) as Record<keyof typeof ASSETS, string>;

  const serve = (name: keyof typeof ASSETS, path: string, summary: string) =>
    app.get(
      path,
      {
        logLevel: 'warn',
        schema: { hide: true, summary },
      },
      async (_request, reply) =>
        reply
          .type(ASSETS[name])
          .header('cache-control', 'no-cache')
          .header('content-security-policy', CSP)
          .header('x-content-type-options', 'nosniff')
          .send(files[name]),
    );

  serve('index.html', '/playground', 'Playground (HTML)');
  serve('playground.js', '/playground/playground.js', 'Playground script');
  serve('playground.css', '/playground/playground.css', 'Playground stylesheet');
}
