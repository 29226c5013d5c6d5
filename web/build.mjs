// Builds the app into ../src/opencode_relay/web/dist: index.html + assets/ (hashed names).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ICONS, iconPng } from './icons.mjs';

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
const chunks = outputs.filter((f) => f.startsWith('chunk-') && !f.endsWith('.map'));
const icon = await readFile(join(here, 'src', 'favicon.svg'));
await writeFile(join(assets, 'favicon.svg'), icon);

// Installable app: PNG icons, the web manifest, and the service worker that keeps the shell.
const THEME = '#2f6feb';
const BACKGROUND = '#f7f7f8';
await mkdir(join(assets, 'icons'));
for (const i of ICONS) await writeFile(join(assets, 'icons', i.name), iconPng(i));
const manifest = {
  id: '/',
  name: 'opencode relay',
  short_name: 'opencode',
  description: 'Drive opencode sessions from any browser.',
  start_url: '/',
  scope: '/',
  display: 'standalone',
  theme_color: THEME,
  background_color: BACKGROUND,
  icons: ICONS.filter((i) => i.purpose !== 'apple').map((i) => ({
    src: `/assets/icons/${i.name}`, sizes: `${i.size}x${i.size}`, type: 'image/png', purpose: i.purpose,
  })),
};
await writeFile(join(dist, 'manifest.webmanifest'), `${JSON.stringify(manifest, null, 2)}\n`);
const appleIcon = ICONS.find((i) => i.purpose === 'apple');

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
<meta name="viewport" content="width=device-width, initial-scale=1, interactive-widget=resizes-content">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<title>opencode relay</title>
<meta name="theme-color" content="${THEME}">
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="manifest" href="/manifest.webmanifest">
<link rel="apple-touch-icon" sizes="${appleIcon.size}x${appleIcon.size}" href="/assets/icons/${appleIcon.name}">
${css ? `<link rel="stylesheet" href="/assets/${css}">\n` : ''}<script type="module" src="/assets/${js}"></script>
</head>
<body></body>
</html>
`;
await writeFile(join(dist, 'index.html'), html);

// The shell the service worker keeps; its hash names the worker's cache, so every build that
// changes the page installs a new worker (browsers compare sw.js byte for byte).
const shell = ['/', '/manifest.webmanifest', '/assets/favicon.svg', `/assets/${js}`,
  ...(css ? [`/assets/${css}`] : []), ...chunks.map((f) => `/assets/${f}`), ...ICONS.map((i) => `/assets/icons/${i.name}`)];
const version = createHash('sha256').update(html).update(JSON.stringify(manifest)).digest('hex').slice(0, 16);
const worker = await build({
  entryPoints: [join(here, 'src', 'sw.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outfile: join(dist, 'sw.js'),
  define: { RELAY_SHELL: JSON.stringify(shell), RELAY_VERSION: JSON.stringify(version) },
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
Object.assign(result.metafile.outputs, worker.metafile.outputs);

const sizes = Object.entries(result.metafile.outputs).map(([p, o]) => `${basename(p)} ${(o.bytes / 1024).toFixed(1)} KiB`);
console.log(`web UI built into ${dist}: ${sizes.join(', ')}`);
