// unifiedFromTexts: the before/after pairs of tool calls and session diffs as unified diffs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unifiedFromTexts, diffStats, MAX_EDITS } from '../src/render/diff.js';

test('a changed line with its context, and no "No newline" marker', () => {
  const patch = unifiedFromTexts('def main():\n    pass\n', 'def main():\n    return 42', 'src/app.py');
  assert.equal(patch, [
    '--- a/src/app.py', '+++ b/src/app.py', '@@ -1,2 +1,2 @@',
    ' def main():', '-    pass', '+    return 42'].join('\n'));
});

test('changes far apart make two hunks with three lines of context', () => {
  const lines = Array.from({ length: 20 }, (_, i) => `line ${i}`);
  const after = [...lines];
  after[2] = 'changed 2';
  after[17] = 'changed 17';
  const patch = unifiedFromTexts(lines.join('\n'), after.join('\n'), 'f');
  assert.deepEqual(patch.split('\n').filter((l) => l.startsWith('@@')), ['@@ -1,6 +1,6 @@', '@@ -15,6 +15,6 @@']);
  assert.deepEqual(diffStats(patch), { additions: 2, deletions: 2 });
});

test('a new file is all additions', () => {
  const patch = unifiedFromTexts('', 'a\nb\n', 'new.txt');
  assert.deepEqual(patch.split('\n').slice(2), ['@@ -0,0 +1,2 @@', '+a', '+b']);
});

test('texts too different to diff cheaply become a whole replacement', () => {
  const text = (prefix) => Array.from({ length: MAX_EDITS }, (_, i) => `${prefix}${i}`).join('\n');
  const patch = unifiedFromTexts(text('old '), text('new '), 'big');
  const lines = patch.split('\n');
  assert.equal(lines[2], `@@ -1,${MAX_EDITS} +1,${MAX_EDITS} @@`);
  assert.deepEqual(diffStats(patch), { additions: MAX_EDITS, deletions: MAX_EDITS });
  assert.equal(lines[3], '-old 0');
  assert.equal(lines[3 + MAX_EDITS], '+new 0');
});
