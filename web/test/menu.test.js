// The composer's menus: which token the caret is in, filtering, parsing a slash command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slashQuery, mentionQuery, filterItems, parseSlash, mentionMime } from '../src/ui/menu.js';

test('a slash query only at the start of the prompt, before any space', () => {
  assert.equal(slashQuery('/', 1), '');
  assert.equal(slashQuery('/rev', 4), 'rev');
  assert.equal(slashQuery('/review x', 9), null);
  assert.equal(slashQuery('a /rev', 6), null);
  assert.equal(slashQuery('/review x', 3), 're');
});

test('a mention at the start or after whitespace, up to the caret', () => {
  assert.deepEqual(mentionQuery('@', 1), { start: 0, query: '' });
  assert.deepEqual(mentionQuery('look at @src/ap', 15), { start: 8, query: 'src/ap' });
  assert.equal(mentionQuery('mail@example', 12), null);
  assert.equal(mentionQuery('@a b', 4), null);
});

test('prefix matches come before substring matches; details count', () => {
  const items = [{ value: 'review', label: '/review' }, { value: 'init', label: '/init', detail: 'guided setup' },
    { value: 'preview', label: '/preview' }];
  assert.deepEqual(filterItems(items, 're').map((i) => i.value), ['review', 'preview']);
  assert.deepEqual(filterItems(items, 'SETUP').map((i) => i.value), ['init']);
  assert.equal(filterItems(items, '').length, 3);
});

test('a slash command splits into its name and arguments', () => {
  assert.deepEqual(parseSlash('/greet Ada  Lovelace '), { name: 'greet', args: 'Ada  Lovelace' });
  assert.deepEqual(parseSlash('/new'), { name: 'new', args: '' });
  assert.equal(parseSlash('hello /x'), null);
});

test('a mentioned file goes as an image or PDF by its extension, else as text', () => {
  assert.equal(mentionMime('docs/shot.PNG'), 'image/png');
  assert.equal(mentionMime('a/b.pdf'), 'application/pdf');
  assert.equal(mentionMime('src/app.py'), 'text/plain');
  assert.equal(mentionMime('Makefile'), 'text/plain');
});
