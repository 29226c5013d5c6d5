// The page side of the installable app (src/pwa.js): waiting for a service worker that is
// still installing before a notification goes through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { whenActive } from '../src/pwa.js';

const never = new Promise(() => {});

test('an active worker is used at once', async () => {
  const registration = { active: {} };
  assert.equal(await whenActive(registration, never, 10_000), registration);
});

test('a worker still installing is waited for, until it is ready', async () => {
  const installing = { active: null };
  const activated = { active: {} };
  let activate;
  const ready = new Promise((resolve) => { activate = resolve; });
  const found = whenActive(installing, ready, 10_000);
  setTimeout(() => activate(activated), 20);
  assert.equal(await found, activated);
});

test('a worker that does not become active in time: none (the page shows it itself)', async () => {
  const started = Date.now();
  assert.equal(await whenActive({ active: null }, never, 50), null);
  assert.ok(Date.now() - started >= 45);
});
