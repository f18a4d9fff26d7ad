// The console's files, served by the node itself at `/`: the HTML shell, the
// bundle and its stylesheet, built by `npm run build` into dist/dashboard.
// Read once at start; a node whose console was not built says so at `/`.
import { existsSync, readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const DIR = new URL('../../../dist/dashboard/', import.meta.url);
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/console/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/console/app.css': ['app.css', 'text/css; charset=utf-8'],
  '/console/app.js.map': ['app.js.map', 'application/json; charset=utf-8'],
} as const;

/** A host as a browser may send it in `Host` (name or address, optional port); anything else gets no socket source. */
const HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/**
 * Scripts, styles and connections from this origin only; the token lives in the page, never in a URL the
 * server sees. The socket sources name the page's own host: browsers that predate CSP 3 do not let 'self'
 * match ws:/wss:, and a bare `ws: wss:` would let the page connect anywhere.
 */
export function consolePolicy(host: string | undefined): string {
  const sockets = host && HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return `default-src 'self'; connect-src 'self'${sockets}; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'`;
}

export function registerConsole(app: FastifyInstance): void {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [route, [file, type]] of Object.entries(FILES)) {
    const url = new URL(file, DIR);
    if (existsSync(url)) files.set(route, { body: readFileSync(url), type });
  }
  for (const route of Object.keys(FILES)) {
    app.get(route, async (req, reply) => {
      const file = files.get(route);
      if (!file) {
        return reply
          .code(503)
          .type('text/plain; charset=utf-8')
          .send('The console is not built in this installation: run `npm run build` (npm ci does it), then restart the server.\n');
      }
      return (
        reply
          .type(file.type)
          .header('content-security-policy', consolePolicy(req.headers.host))
          .header('x-content-type-options', 'nosniff')
          // For browsers that ignore CSP frame-ancestors: the console is never framed (clickjacking).
          .header('x-frame-options', 'DENY')
          .header('referrer-policy', 'no-referrer')
          .header('cache-control', route === '/' ? 'no-cache' : 'public, max-age=300')
          .send(file.body)
      );
    });
  }
}
