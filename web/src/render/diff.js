// @ts-check
// Diff views: a unified diff string, or a before/after pair turned into one.
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { h } from '../dom.js';

/** Lines added and removed by a unified diff. @param {string | null | undefined} patch */
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

/**
 * Renders a unified diff; file headers are dropped (the card already names the file).
 * @param {string | null | undefined} patch
 * @param {{maxLines?: number}} [options]
 */
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

// Line diff of two texts as a unified diff with 3 lines of context (jsdiff's Myers diff).
// Both texts get exactly one final newline, so no "\ No newline" lines appear. Texts that
// differ in more than MAX_EDITS lines are shown as the whole old text replaced by the new one
// (the diff's cost grows with the number of edits).
export const MAX_EDITS = 4000;

/** @param {string | undefined} before @param {string | undefined} after @param {string} file */
export function unifiedFromTexts(before, after, file = '') {
  /** @param {string | undefined} text */
  const normal = (text) => (text ? `${text.replace(/\n$/, '')}\n` : '');
  const a = normal(before);
  const b = normal(after);
  const patch = createTwoFilesPatch(`a/${file}`, `b/${file}`, a, b, undefined, undefined,
    { context: 3, maxEditLength: MAX_EDITS, headerOptions: FILE_HEADERS_ONLY });
  return (patch === undefined ? wholeReplacement(file, a, b) : patch).replace(/\n$/, '');
}

/** @param {string} file @param {string} a @param {string} b */
function wholeReplacement(file, a, b) {
  /** @param {string} text */
  const lines = (text) => (text ? text.replace(/\n$/, '').split('\n') : []);
  const old = lines(a);
  const now = lines(b);
  return [`--- a/${file}`, `+++ b/${file}`,
    `@@ -${old.length ? 1 : 0},${old.length} +${now.length ? 1 : 0},${now.length} @@`,
    ...old.map((l) => `-${l}`), ...now.map((l) => `+${l}`), ''].join('\n');
}
