// Diff views: a unified diff string, or a before/after pair turned into one.
import { h } from '../dom.js';

export function diffStats(patch) {
  let additions = 0;
  let deletions = 0;
  for (const line of (patch || '').split('\n')) {
    if (line.startsWith('+++') || line.startsWith('---')) continue;
    if (line.startsWith('+')) additions++;
    else if (line.startsWith('-')) deletions++;
  }
  return { additions, deletions };
}

// Renders a unified diff; file headers are dropped (the card already names the file).
export function renderUnifiedDiff(patch, { maxLines = 2000 } = {}) {
  const pre = h('pre', { class: 'diff', testid: 'diff-lines' });
  const lines = (patch || '').replace(/\n$/, '').split('\n');
  let shown = 0;
  for (const line of lines) {
    if (/^(diff |index |--- |\+\+\+ |={5,}|Index: )/.test(line)) continue;
    if (shown++ >= maxLines) {
      pre.append(h('span', { class: 'diff-line diff-more', text: `… ${lines.length - maxLines} more lines` }));
      break;
    }
    let cls = 'ctx';
    if (line.startsWith('@@')) cls = 'hunk';
    else if (line.startsWith('+')) cls = 'add';
    else if (line.startsWith('-')) cls = 'del';
    else if (line.startsWith('\\')) cls = 'meta';
    pre.append(h('span', { class: `diff-line diff-${cls}`, text: line || ' ' }));
  }
  return pre;
}

// Line diff of two texts as a unified diff with 3 lines of context.
export function unifiedFromTexts(before, after, file = '') {
  const lines = (text) => (text ? text.replace(/\n$/, '').split('\n') : []);
  const a = lines(before);
  const b = lines(after);
  const ops = lineOps(a, b);
  const out = [`--- a/${file}`, `+++ b/${file}`];
  const context = 3;
  let i = 0;
  while (i < ops.length) {
    if (ops[i].op === '=') { i++; continue; }
    let start = Math.max(0, i - context);
    let end = i;
    // Extend the hunk while changes are close together.
    while (end < ops.length) {
      if (ops[end].op !== '=') { end++; continue; }
      let run = 0;
      while (end + run < ops.length && ops[end + run].op === '=') run++;
      if (end + run >= ops.length || run > context * 2) { end = Math.min(ops.length, end + context); break; }
      end += run;
    }
    const hunk = ops.slice(start, end);
    const aStart = (hunk.find((o) => o.op !== '+') || { ai: 0 }).ai + 1;
    const bStart = (hunk.find((o) => o.op !== '-') || { bi: 0 }).bi + 1;
    const aLen = hunk.filter((o) => o.op !== '+').length;
    const bLen = hunk.filter((o) => o.op !== '-').length;
    out.push(`@@ -${aStart},${aLen} +${bStart},${bLen} @@`);
    for (const o of hunk) out.push((o.op === '=' ? ' ' : o.op) + o.line);
    i = end;
  }
  return out.join('\n');
}

function lineOps(a, b) {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const ops = [];
  for (let k = 0; k < pre; k++) ops.push({ op: '=', line: a[k], ai: k, bi: k });
  const am = a.slice(pre, a.length - suf);
  const bm = b.slice(pre, b.length - suf);
  if (am.length * bm.length <= 4_000_000) {
    // LCS table on the changed middle only.
    const n = am.length;
    const m = bm.length;
    const t = new Array(n + 1);
    for (let x = 0; x <= n; x++) t[x] = new Uint32Array(m + 1);
    for (let x = n - 1; x >= 0; x--) {
      for (let y = m - 1; y >= 0; y--) {
        t[x][y] = am[x] === bm[y] ? t[x + 1][y + 1] + 1 : Math.max(t[x + 1][y], t[x][y + 1]);
      }
    }
    let x = 0;
    let y = 0;
    while (x < n || y < m) {
      if (x < n && y < m && am[x] === bm[y]) { ops.push({ op: '=', line: am[x], ai: pre + x, bi: pre + y }); x++; y++; }
      else if (x < n && (y >= m || t[x + 1][y] >= t[x][y + 1])) { ops.push({ op: '-', line: am[x], ai: pre + x, bi: pre + y }); x++; }
      else { ops.push({ op: '+', line: bm[y], ai: pre + x, bi: pre + y }); y++; }
    }
  } else {
    am.forEach((line, k) => ops.push({ op: '-', line, ai: pre + k, bi: pre }));
    bm.forEach((line, k) => ops.push({ op: '+', line, ai: pre + am.length, bi: pre + k }));
  }
  for (let k = 0; k < suf; k++) {
    ops.push({ op: '=', line: a[a.length - suf + k], ai: a.length - suf + k, bi: b.length - suf + k });
  }
  return ops;
}

// A FileDiff ({file, before, after, additions, deletions, patch?}) as a unified diff string.
export function patchOfFileDiff(fd) {
  if (fd.patch) return fd.patch;
  return unifiedFromTexts(fd.before, fd.after, fd.file);
}
