// Builds dist/: the <script> bundle, the ESM bundle for npm, the SharedWorker and the
// iframe hub script. One SDK version is baked into all of them, so the worker URL
// (?v=version) and the tab/worker handshake both change together on release.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url)));
const common = {
  bundle: true, minify: true, sourcemap: true, target: ['es2020'], logLevel: 'warning',
  define: { __TABCAST_VERSION__: JSON.stringify(version) },
  legalComments: 'none',
};

await Promise.all([
  build({ ...common, entryPoints: ['src/browser.js'], outfile: 'dist/tabcast.js', format: 'iife' }),
  build({ ...common, entryPoints: ['src/index.js'], outfile: 'dist/tabcast.mjs', format: 'esm', minify: false }),
  build({ ...common, entryPoints: ['src/hosts/worker.js'], outfile: 'dist/worker.js', format: 'iife' }),
  build({ ...common, entryPoints: ['src/hosts/frame.js'], outfile: 'dist/frame.js', format: 'iife' }),
]);
console.log(`built @tabcast/browser ${version} into dist/`);
