// Builds the app into ../src/opencode_relay/web/dist: index.html + assets/ (hashed names).
import { build } from 'esbuild';
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'src', 'opencode_relay', 'web', 'dist');
const assets = join(dist, 'assets');

await rm(dist, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await build({
  entryPoints: { app: join(here, 'src', 'main.js') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: assets,
  entryNames: '[name]-[hash]',
  splitting: true, // lazily imported code (xterm.js) gets chunks of its own
  chunkNames: 'chunk-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.startsWith('app-') && f.endsWith('.js'));
const css = outputs.find((f) => f.startsWith('app-') && f.endsWith('.css'));
const icon = await readFile(join(here, 'src', 'favicon.svg'));
await writeFile(join(assets, 'favicon.svg'), icon);

// Everything comes from the relay itself; the policy keeps model output from loading or running anything.
const csp = [
  "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:", "connect-src 'self'", "font-src 'self'", "object-src 'none'",
  "base-uri 'none'", "form-action 'none'", "frame-src 'none'",
].join('; ');

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<title>opencode relay</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
${css ? `<link rel="stylesheet" href="/assets/${css}">\n` : ''}<script type="module" src="/assets/${js}"></script>
</head>
<body></body>
</html>
`;
await writeFile(join(dist, 'index.html'), html);

const sizes = Object.entries(result.metafile.outputs).map(([p, o]) => `${basename(p)} ${(o.bytes / 1024).toFixed(1)} KiB`);
console.log(`web UI built into ${dist}: ${sizes.join(', ')}`);
