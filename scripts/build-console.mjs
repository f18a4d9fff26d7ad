// Builds the console (src/dashboard) into dist/dashboard: one ES module
// bundle (Preact, uPlot, the client SDK, the app), its CSS and the HTML shell.
// Run by `npm run build` (and so by `npm ci`, through `prepare`).
import { copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/dashboard`;
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [`${root}src/dashboard/main.tsx`],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: true,
  outdir: out,
  entryNames: 'app',
  metafile: true,
  logLevel: 'warning',
});
copyFileSync(`${root}src/dashboard/index.html`, `${out}/index.html`);
const sizes = Object.entries(result.metafile.outputs)
  .filter(([file]) => !file.endsWith('.map'))
  .map(([file, meta]) => `${file.split('/').pop()} ${(meta.bytes / 1024).toFixed(1)} KiB`);
writeFileSync(`${out}/build.json`, JSON.stringify({ builtAt: new Date().toISOString(), sizes }, null, 2));
process.stdout.write(`console built: ${sizes.join(', ')} (index.html ${(statSync(`${out}/index.html`).size / 1024).toFixed(1)} KiB)\n`);
