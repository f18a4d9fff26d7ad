// The console's files, served by the node itself at `/`: the HTML shell, the
// bundle and its stylesheet, built by `npm run build` into dist/dashboard.
// Read once at start; a node whose console was not built says so at `/`.
import { existsSync, readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const DIR = new URL('../../dist/dashboard/', import.meta.url);
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/console/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/console/app.css': ['app.css', 'text/css; charset=utf-8'],
  '/console/app.js.map': ['app.js.map', 'application/json; charset=utf-8'],
} as const;

/** Scripts and connections from this origin only; the token lives in the page, never in a URL the server sees. */
const CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

export function registerConsole(app: FastifyInstance): void {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [route, [file, type]] of Object.entries(FILES)) {
    const url = new URL(file, DIR);
    if (existsSync(url)) files.set(route, { body: readFileSync(url), type });
  }
  for (const route of Object.keys(FILES)) {
    app.get(route, async (_req, reply) => {
      const file = files.get(route);
      if (!file) {
        return reply
          .code(503)
          .type('text/plain; charset=utf-8')
          .send('The console is not built in this installation: run `npm run build` (npm ci does it), then restart the server.\n');
      }
      return reply
        .type(file.type)
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', route === '/' ? 'no-cache' : 'public, max-age=300')
        .send(file.body);
    });
  }
}
