// The app's PNG icons, drawn at build time (no image library): the favicon's design — a blue
// tile with a white terminal prompt (">_") — rasterized with anti-aliased distance fields.
import { deflateSync, crc32 } from 'node:zlib';

const BLUE = [0x2f, 0x6f, 0xeb];
const WHITE = [0xff, 0xff, 0xff];

/** The icons browsers ask for: name, size, and how the tile is cut. */
export const ICONS = [
  { name: 'icon-192.png', size: 192, shape: 'rounded', purpose: 'any' },
  { name: 'icon-512.png', size: 512, shape: 'rounded', purpose: 'any' },
  // Maskable: the platform cuts its own shape, so the tile fills the square and the glyph stays
  // inside the safe zone (the centre circle of 80% diameter).
  { name: 'icon-maskable-512.png', size: 512, shape: 'full', purpose: 'maskable' },
  // iOS rounds the corners itself and shows transparency as black.
  { name: 'apple-touch-icon-180.png', size: 180, shape: 'full', purpose: 'apple' },
];

/** Distance from (px, py) to the segment a-b. */
function segment(px, py, ax, ay, bx, by) {
  const dx = bx - ax;
  const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - ax - t * dx, py - ay - t * dy);
}

/** Signed distance to a square of side s with corner radius r (negative inside). */
function roundedSquare(px, py, s, r) {
  const qx = Math.abs(px - s / 2) - (s / 2 - r);
  const qy = Math.abs(py - s / 2) - (s / 2 - r);
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
}

/**
 * RGBA pixels of one icon. The glyph is the favicon's path (a 32-unit grid), scaled by `glyph`
 * around the centre.
 * @param {number} size @param {'rounded' | 'full'} shape
 */
export function drawIcon(size, shape) {
  const rgba = Buffer.alloc(size * size * 4);
  const unit = size / 32;
  const glyph = shape === 'full' ? 0.8 : 1; // keeps the maskable glyph in the safe zone
  const map = (v) => (16 + (v - 16) * glyph) * unit;
  const strokes = [[9, 11, 15, 16], [15, 16, 9, 21], [17, 22, 24, 22]]
    .map(([ax, ay, bx, by]) => [map(ax), map(ay), map(bx), map(by)]);
  const half = (2.6 / 2) * unit * glyph;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const px = x + 0.5;
      const py = y + 0.5;
      const tile = shape === 'full' ? 1 : Math.max(0, Math.min(1, 0.5 - roundedSquare(px, py, size, 7 * unit)));
      const d = Math.min(...strokes.map(([ax, ay, bx, by]) => segment(px, py, ax, ay, bx, by))) - half;
      const ink = Math.max(0, Math.min(1, 0.5 - d));
      const o = (y * size + x) * 4;
      for (let c = 0; c < 3; c++) rgba[o + c] = Math.round(BLUE[c] + (WHITE[c] - BLUE[c]) * ink);
      rgba[o + 3] = Math.round(255 * tile);
    }
  }
  return rgba;
}

/** @param {string} type @param {Buffer} data */
function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG file (8-bit RGBA, no interlace) of size×size pixels. */
export function encodePng(rgba, size) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8);
  const rows = Buffer.alloc((size * 4 + 1) * size);
  for (let y = 0; y < size; y++) {
    rows[y * (size * 4 + 1)] = 0; // filter: none
    rgba.copy(rows, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** @param {{size: number, shape: string}} icon */
export function iconPng(icon) {
  return encodePng(drawIcon(icon.size, icon.shape === 'full' ? 'full' : 'rounded'), icon.size);
}
