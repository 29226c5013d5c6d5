// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { languageOf, lineCount, formatBytes } from '../src/render/filetype.js';

test('a file\'s language comes from its extension or its whole name', () => {
  assert.equal(languageOf('src/app.py'), 'python');
  assert.equal(languageOf('web/src/main.JS'), 'javascript');
  assert.equal(languageOf('pyproject.toml'), 'ini');
  assert.equal(languageOf('docs/ui.md'), 'markdown');
  assert.equal(languageOf('Makefile'), 'makefile');
  assert.equal(languageOf('deploy/Dockerfile'), 'dockerfile');
  assert.equal(languageOf('notes.txt'), '');
  assert.equal(languageOf('.bashrc'), 'bash');
  assert.equal(languageOf('.hidden'), '');  // a leading dot is a name, not an extension
  assert.equal(languageOf('LICENSE'), '');
});

test('lines are counted as an editor numbers them', () => {
  assert.equal(lineCount(''), 1);
  assert.equal(lineCount('one'), 1);
  assert.equal(lineCount('one\ntwo'), 2);
  assert.equal(lineCount('one\ntwo\n'), 3);
});

test('sizes read in plain units', () => {
  assert.equal(formatBytes(41), '41 B');
  assert.equal(formatBytes(1024), '1.0 KiB');
  assert.equal(formatBytes(3 * 1024 * 1024), '3.0 MiB');
  assert.equal(formatBytes(150 * 1024), '150 KiB');
});
