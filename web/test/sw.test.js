// The service worker's decisions (src/sw/policy.js): what it answers from the shell cache, and
// what a push payload shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anyVisible, notificationFor, pickWindow, strategy } from '../src/sw/policy.js';

const ORIGIN = 'https://relay.example';
const SHELL = new Set(['/', '/assets/app-X.js', '/manifest.webmanifest']);
const req = (path, { method = 'GET', mode = 'cors', accept = '*/*' } = {}) => ({
  method, mode, url: `${ORIGIN}${path}`, headers: { get: (n) => (n === 'accept' ? accept : null) },
});

test('page loads get the shell, shell files the cache, everything else the network', () => {
  assert.equal(strategy(req('/?session=ses_1', { mode: 'navigate' }), ORIGIN, SHELL), 'shell');
  assert.equal(strategy(req('/assets/app-X.js'), ORIGIN, SHELL), 'asset');
  assert.equal(strategy(req('/manifest.webmanifest'), ORIGIN, SHELL), 'asset');
  assert.equal(strategy(req('/assets/app-OLD.js'), ORIGIN, SHELL), null);
  assert.equal(strategy(req('/api/docs', { mode: 'navigate' }), ORIGIN, SHELL), null);
});

test('never the API, event streams, health, metrics, writes or other sites', () => {
  for (const path of ['/api/sessions', '/api/events', '/api', '/metrics', '/healthz', '/readyz']) {
    assert.equal(strategy(req(path), ORIGIN, new Set([...SHELL, path])), null, path);
  }
  assert.equal(strategy(req('/', { accept: 'text/event-stream' }), ORIGIN, SHELL), null);
  assert.equal(strategy(req('/', { method: 'POST', mode: 'navigate' }), ORIGIN, SHELL), null);
  assert.equal(strategy({ ...req('/'), url: 'https://elsewhere.example/' }, ORIGIN, SHELL), null);
});

test('a push payload becomes a notification that links inside this origin only', () => {
  const shown = notificationFor({ title: 'Permission needed', body: 'b', url: '/?session=ses_1', tag: 'permission:per_1', kind: 'permission', sessionID: 'ses_1' }, ORIGIN);
  assert.equal(shown.title, 'Permission needed');
  assert.deepEqual({ ...shown.options, icon: undefined, badge: undefined },
    { body: 'b', tag: 'permission:per_1', data: { url: '/?session=ses_1' }, icon: undefined, badge: undefined });
  assert.equal(notificationFor({ title: 't', url: 'https://evil.example/x' }, ORIGIN).options.data.url, '/');
  assert.equal(notificationFor({ title: 't', kind: 'idle', sessionID: 's' }, ORIGIN).options.tag, 'idle:s');
  assert.equal(notificationFor({ body: 'no title' }, ORIGIN), null);
  assert.equal(notificationFor('text', ORIGIN), null);
});

test('a click goes to the focused, else a visible, else any window of ours', () => {
  const a = { url: `${ORIGIN}/`, visibilityState: 'hidden', focused: false };
  const b = { url: `${ORIGIN}/?session=x`, visibilityState: 'visible', focused: false };
  const other = { url: 'https://elsewhere.example/', visibilityState: 'visible', focused: true };
  assert.equal(pickWindow([a, b, other], ORIGIN), b);
  assert.equal(pickWindow([a, other], ORIGIN), a);
  assert.equal(pickWindow([other], ORIGIN), null);
  assert.equal(anyVisible([a]), false);
  assert.equal(anyVisible([a, b]), true);
});
